//! A restricted pickle machine: the protocol-2 opcodes a legacy `torch.save` emits, and nothing that
//! can import or run code.
//!
//! Why not `candle_core::pickle`: it reads the pickle inside the zip-format checkpoints only (the
//! legacy format appends raw storages after several pickles and has no zip), and it accepts any
//! `GLOBAL`, turning unknown ones into opaque objects. This machine instead refuses every global but
//! the tensor-rebuilding ones ([`Global`]), calls (`REDUCE`) only those, and checks every length
//! against the bytes that are really there, so a truncated or lying file is an error — never a
//! panic, never an allocation the file's own size does not pay for.
//!
//! Values follow Python's semantics where a state dict needs them: lists and dicts are shared through
//! the memo (`Rc<RefCell>`). To rule out cycles (leaks) and unbounded nesting (a stack overflow when
//! dropping), a container becomes read-only once it is placed inside another value — the order in
//! which Python's pickler emits objects (children complete before their parent) — and nesting is
//! capped at [`MAX_NESTING`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::WeightsError;

type Result<T> = std::result::Result<T, WeightsError>;

/// Deepest nesting of tuples, lists and dicts accepted. A state dict needs 3 (the `_metadata`
/// state: a dict holding an `OrderedDict` of dicts); the rebuild arguments need 2.
pub const MAX_NESTING: usize = 32;

/// `GLOBAL` names are dotted Python identifiers; longer lines are not worth reading.
const MAX_GLOBAL_LINE: usize = 256;

/// The element type of a `torch.*Storage` class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDtype {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageDtype {
    /// `torch.FloatStorage` → `F32`, ...; `None` for classes we do not map.
    fn from_class_name(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Self::F64,
            "FloatStorage" => Self::F32,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element in the file (and in safetensors).
    pub fn size_in_bytes(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    /// The same element type in safetensors.
    pub fn safetensors(self) -> safetensors::Dtype {
        use safetensors::Dtype;
        match self {
            Self::F64 => Dtype::F64,
            Self::F32 => Dtype::F32,
            Self::F16 => Dtype::F16,
            Self::BF16 => Dtype::BF16,
            Self::I64 => Dtype::I64,
            Self::I32 => Dtype::I32,
            Self::I16 => Dtype::I16,
            Self::I8 => Dtype::I8,
            Self::U8 => Dtype::U8,
            Self::Bool => Dtype::BOOL,
        }
    }
}

/// The only globals the machine will look up: the whitelist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    /// `collections OrderedDict` (the state dict and its `_metadata`).
    OrderedDict,
    /// `torch._utils _rebuild_tensor_v2` (one tensor: a view of a storage).
    RebuildTensorV2,
    /// `torch FloatStorage` and friends: only usable as a storage's type in a persistent id.
    Storage(StorageDtype),
}

impl Global {
    fn whitelisted(module: &str, name: &str) -> Option<Self> {
        match (module, name) {
            ("collections", "OrderedDict") => Some(Self::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Self::RebuildTensorV2),
            ("torch", class) => StorageDtype::from_class_name(class).map(Self::Storage),
            _ => None,
        }
    }
}

/// A storage named by a persistent id `('storage', torch.XStorage, key, location, numel, None)`.
/// Its bytes follow the pickles in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    pub key: Rc<str>,
    pub dtype: StorageDtype,
    /// Number of elements (not bytes).
    pub numel: u64,
    /// Device it was saved from (`cpu`, `cuda:0`): the bytes are the same either way.
    pub location: Rc<str>,
}

/// A tensor rebuilt by `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`:
/// element `[i0, i1, ...]` is storage element `offset + Σ i_k · strides[k]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
}

/// Hashable dict keys: the strings and integers a checkpoint uses (anything else is refused).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DictKey {
    Str(Rc<str>),
    Int(i128),
}

/// An insertion-ordered dict with Python's overwrite semantics.
#[derive(Debug, Default)]
pub struct Dict {
    entries: Vec<(DictKey, Value)>,
    index: HashMap<DictKey, usize>,
}

impl Dict {
    fn insert(&mut self, key: DictKey, value: Value) {
        match self.index.get(&key) {
            Some(&at) => self.entries[at].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    /// Entries in insertion order.
    pub fn entries(&self) -> &[(DictKey, Value)] {
        &self.entries
    }

    /// The value under a string key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(&DictKey::Str(key.into())).map(|&at| &self.entries[at].1)
    }
}

/// A list or dict: shared through the memo, mutable until nested in another value.
#[derive(Debug, Default)]
pub struct Container<T> {
    items: RefCell<T>,
    depth: Cell<usize>,
    nested: Cell<bool>,
}

impl<T> Container<T> {
    pub fn borrow(&self) -> std::cell::Ref<'_, T> {
        self.items.borrow()
    }
}

/// An immutable tuple with its nesting depth.
#[derive(Debug)]
pub struct Tuple {
    pub items: Vec<Value>,
    depth: usize,
}

/// A value on the machine's stack.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Str(Rc<str>),
    Tuple(Rc<Tuple>),
    List(Rc<Container<Vec<Value>>>),
    Dict(Rc<Container<Dict>>),
    OrderedDict(Rc<Container<Dict>>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// A short name for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Str(_) => "str".into(),
            Value::Tuple(t) => format!("tuple of {}", t.items.len()),
            Value::List(_) => "list".into(),
            Value::Dict(_) => "dict".into(),
            Value::OrderedDict(_) => "OrderedDict".into(),
            Value::Global(g) => format!("global {g:?}"),
            Value::Storage(_) => "storage".into(),
            Value::Tensor(_) => "tensor".into(),
        }
    }

    fn depth(&self) -> usize {
        match self {
            Value::Tuple(t) => t.depth,
            Value::List(c) => c.depth.get(),
            Value::Dict(c) | Value::OrderedDict(c) => c.depth.get(),
            _ => 0,
        }
    }

    /// Marks a container as nested (read-only from now on): it is being placed inside another value.
    fn mark_nested(&self) {
        match self {
            Value::List(c) => c.nested.set(true),
            Value::Dict(c) | Value::OrderedDict(c) => c.nested.set(true),
            _ => {}
        }
    }
}

/// Every storage the persistent ids declared, by key (one file may reference a storage many times).
#[derive(Debug, Default)]
pub struct StorageTable {
    by_key: HashMap<Rc<str>, Rc<StorageRef>>,
}

impl StorageTable {
    pub fn get(&self, key: &str) -> Option<&Rc<StorageRef>> {
        self.by_key.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rc<StorageRef>> {
        self.by_key.values()
    }

    /// The one shared record for `storage`; a second declaration must agree with the first.
    fn declare(&mut self, storage: StorageRef, offset: usize) -> Result<Rc<StorageRef>> {
        if let Some(known) = self.by_key.get(&storage.key) {
            if known.dtype != storage.dtype || known.numel != storage.numel {
                return Err(WeightsError::malformed(
                    offset,
                    format!(
                        "storage `{}` declared as {:?}×{} and as {:?}×{}",
                        storage.key, known.dtype, known.numel, storage.dtype, storage.numel
                    ),
                ));
            }
            return Ok(known.clone());
        }
        let storage = Rc::new(storage);
        self.by_key.insert(storage.key.clone(), storage.clone());
        Ok(storage)
    }
}

/// Runs one pickle that starts at `data[start]` up to its `STOP`; returns the value and the offset
/// just past the `STOP`. Storages its persistent ids declare go into `storages`.
pub fn load(data: &[u8], start: usize, storages: &mut StorageTable) -> Result<(Value, usize)> {
    let mut machine =
        Machine { data, pos: start, op: start, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), storages };
    let value = machine.run()?;
    Ok((value, machine.pos))
}

mod op {
    pub const PROTO: u8 = 0x80;
    pub const STOP: u8 = b'.';
    pub const GLOBAL: u8 = b'c';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const MARK: u8 = b'(';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const EMPTY_TUPLE: u8 = b')';
    pub const EMPTY_DICT: u8 = b'}';
    pub const EMPTY_LIST: u8 = b']';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const APPEND: u8 = b'a';
    pub const APPENDS: u8 = b'e';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const LONG1: u8 = 0x8a;
    pub const BINUNICODE: u8 = b'X';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const BUILD: u8 = b'b';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
}

struct Machine<'a, 's> {
    data: &'a [u8],
    /// Next byte to read.
    pos: usize,
    /// Offset of the opcode being executed (what errors report).
    op: usize,
    stack: Vec<Value>,
    /// Stack heights at each open `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    storages: &'s mut StorageTable,
}

impl<'a> Machine<'a, '_> {
    fn run(&mut self) -> Result<Value> {
        loop {
            self.op = self.pos;
            let opcode = self.bytes(1, "an opcode")?[0];
            if opcode == op::STOP {
                return self.stop();
            }
            self.step(opcode)?;
        }
    }

    fn step(&mut self, opcode: u8) -> Result<()> {
        match opcode {
            op::PROTO => {
                let version = self.bytes(1, "PROTO")?[0];
                if !(2..=5).contains(&version) {
                    return Err(self.malformed(format!("pickle protocol {version} (2 to 5 accepted)")));
                }
            }
            op::GLOBAL => {
                let module = self.line("GLOBAL module")?;
                let name = self.line("GLOBAL name")?;
                let Some(global) = Global::whitelisted(&module, &name) else {
                    return Err(WeightsError::ForbiddenGlobal { module, name, offset: self.op });
                };
                self.stack.push(Value::Global(global));
            }
            op::BINPUT => {
                let at = self.bytes(1, "BINPUT")?[0];
                self.memo_put(at.into())?;
            }
            op::LONG_BINPUT => {
                let at = self.u32("LONG_BINPUT")?;
                self.memo_put(at)?;
            }
            op::BINGET => {
                let at = self.bytes(1, "BINGET")?[0];
                self.memo_get(at.into())?;
            }
            op::LONG_BINGET => {
                let at = self.u32("LONG_BINGET")?;
                self.memo_get(at)?;
            }
            op::MARK => self.marks.push(self.stack.len()),
            op::TUPLE => {
                let items = self.pop_to_mark()?;
                self.push_tuple(items)?;
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(opcode - op::TUPLE1) + 1;
                let items = self.pop_n(n)?;
                self.push_tuple(items)?;
            }
            op::EMPTY_TUPLE => self.push_tuple(Vec::new())?,
            op::EMPTY_DICT => self.stack.push(Value::Dict(Rc::default())),
            op::EMPTY_LIST => self.stack.push(Value::List(Rc::default())),
            op::SETITEM => {
                let pair = self.pop_n(2)?;
                self.set_items(pair)?;
            }
            op::SETITEMS => {
                let pairs = self.pop_to_mark()?;
                self.set_items(pairs)?;
            }
            op::APPEND => {
                let item = self.pop_n(1)?;
                self.append(item)?;
            }
            op::APPENDS => {
                let items = self.pop_to_mark()?;
                self.append(items)?;
            }
            op::BININT => {
                let b = self.bytes(4, "BININT")?;
                let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                self.stack.push(Value::Int(v.into()));
            }
            op::BININT1 => {
                let v = self.bytes(1, "BININT1")?[0];
                self.stack.push(Value::Int(v.into()));
            }
            op::BININT2 => {
                let b = self.bytes(2, "BININT2")?;
                self.stack.push(Value::Int(u16::from_le_bytes([b[0], b[1]]).into()));
            }
            op::LONG1 => {
                let v = self.long1()?;
                self.stack.push(Value::Int(v));
            }
            op::BINUNICODE => {
                let len = self.u32("BINUNICODE length")? as usize;
                self.push_str(len)?;
            }
            op::SHORT_BINUNICODE => {
                let len = self.bytes(1, "SHORT_BINUNICODE length")?[0];
                self.push_str(len.into())?;
            }
            op::BINPERSID => {
                let pid = self.pop()?;
                let storage = self.persistent_load(pid)?;
                self.stack.push(Value::Storage(storage));
            }
            op::REDUCE => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let value = self.reduce(callable, args)?;
                self.stack.push(value);
            }
            op::BUILD => self.build()?,
            op::NONE => self.stack.push(Value::None),
            op::NEWTRUE => self.stack.push(Value::Bool(true)),
            op::NEWFALSE => self.stack.push(Value::Bool(false)),
            _ => return Err(WeightsError::UnsupportedOpcode { opcode, offset: self.op }),
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<Value> {
        if !self.marks.is_empty() || self.stack.len() != 1 {
            return Err(self.malformed(format!(
                "STOP with {} values and {} open marks (expected one value, no mark)",
                self.stack.len(),
                self.marks.len()
            )));
        }
        Ok(self.stack.pop().expect("checked: one value"))
    }

    // ---- reading operands (all bounds-checked) ----

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.data.len());
        let Some(end) = end else {
            return Err(WeightsError::Truncated { what, offset: self.op, end: self.data.len() });
        };
        let (data, start) = (self.data, self.pos);
        self.pos = end;
        Ok(&data[start..end])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `LONG1`: a byte count, then that many bytes of little-endian two's complement.
    fn long1(&mut self) -> Result<i128> {
        let n = usize::from(self.bytes(1, "LONG1 length")?[0]);
        if n > 16 {
            return Err(self.malformed(format!("LONG1 of {n} bytes (at most 16 supported)")));
        }
        let digits = self.bytes(n, "LONG1")?;
        let Some(&last) = digits.last() else {
            return Ok(0);
        };
        // Sign-extend from the most significant byte, then fill in the digits.
        let mut buf = if last & 0x80 != 0 { [0xff; 16] } else { [0; 16] };
        buf[..n].copy_from_slice(digits);
        Ok(i128::from_le_bytes(buf))
    }

    /// A newline-terminated `GLOBAL` operand.
    fn line(&mut self, what: &'static str) -> Result<String> {
        let rest = &self.data[self.pos..];
        let window = &rest[..rest.len().min(MAX_GLOBAL_LINE + 1)];
        let Some(len) = window.iter().position(|&b| b == b'\n') else {
            return Err(if rest.len() <= MAX_GLOBAL_LINE {
                WeightsError::Truncated { what, offset: self.op, end: self.data.len() }
            } else {
                self.malformed(format!("{what} longer than {MAX_GLOBAL_LINE} bytes"))
            });
        };
        let text =
            std::str::from_utf8(&rest[..len]).map_err(|_| self.malformed(format!("{what} is not UTF-8")))?.to_owned();
        self.pos += len + 1;
        Ok(text)
    }

    fn push_str(&mut self, len: usize) -> Result<()> {
        let bytes = self.bytes(len, "a string")?;
        let text = std::str::from_utf8(bytes).map_err(|_| self.malformed("string is not UTF-8"))?;
        let text: Rc<str> = text.into();
        self.stack.push(Value::Str(text));
        Ok(())
    }

    // ---- stack and memo ----

    fn pop(&mut self) -> Result<Value> {
        self.pop_n(1).map(|mut v| v.pop().expect("pop_n(1) returns one value"))
    }

    /// The top `n` values, bottom first. Values above an open mark only.
    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + n {
            return Err(self.malformed(format!("stack underflow (needs {n} values)")));
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn pop_to_mark(&mut self) -> Result<Vec<Value>> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.malformed("no MARK to pop to"));
        };
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, at: u32) -> Result<()> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.malformed("memo put with nothing on the stack"));
        }
        let top = self.stack.last().expect("checked: not empty").clone();
        self.memo.insert(at, top);
        Ok(())
    }

    fn memo_get(&mut self, at: u32) -> Result<()> {
        let value = self.memo.get(&at).cloned();
        let value = value.ok_or_else(|| self.malformed(format!("memo entry {at} is empty")))?;
        self.stack.push(value);
        Ok(())
    }

    // ---- building values ----

    /// The depth of a value holding `children`, or an error past [`MAX_NESTING`].
    fn nest(&self, children: &[Value]) -> Result<usize> {
        let depth = 1 + children.iter().map(Value::depth).max().unwrap_or(0);
        if depth > MAX_NESTING {
            return Err(WeightsError::NestingTooDeep { offset: self.op, limit: MAX_NESTING });
        }
        children.iter().for_each(Value::mark_nested);
        Ok(depth)
    }

    fn push_tuple(&mut self, items: Vec<Value>) -> Result<()> {
        let depth = self.nest(&items)?;
        self.stack.push(Value::Tuple(Rc::new(Tuple { items, depth })));
        Ok(())
    }

    /// The container on top of the stack, if it may still be filled.
    fn open_container<T>(&self, container: &Container<T>) -> Result<()> {
        if container.nested.get() {
            return Err(self.malformed("filling a list or dict already nested in another value"));
        }
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<Value>) -> Result<()> {
        if pairs.len() % 2 != 0 {
            return Err(self.malformed("SETITEMS with an odd number of values"));
        }
        let depth = self.nest(&pairs)?;
        let target = match self.stack.last() {
            Some(Value::Dict(d) | Value::OrderedDict(d)) => d.clone(),
            other => {
                let found = other.map_or("nothing".into(), Value::kind);
                return Err(self.malformed(format!("SETITEM(S) on {found}, not a dict")));
            }
        };
        self.open_container(&target)?;
        let mut dict = target.items.borrow_mut();
        let mut pairs = pairs.into_iter();
        while let (Some(key), Some(value)) = (pairs.next(), pairs.next()) {
            let key = match key {
                Value::Str(s) => DictKey::Str(s),
                Value::Int(i) => DictKey::Int(i),
                other => {
                    return Err(self.malformed(format!("dict key of type {}", other.kind())));
                }
            };
            dict.insert(key, value);
        }
        target.depth.set(target.depth.get().max(depth));
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        let depth = self.nest(&items)?;
        let Some(Value::List(target)) = self.stack.last() else {
            return Err(self.malformed("APPEND(S) on something that is not a list"));
        };
        let target = target.clone();
        self.open_container(&target)?;
        target.items.borrow_mut().extend(items);
        target.depth.set(target.depth.get().max(depth));
        Ok(())
    }

    /// `REDUCE`: only `OrderedDict()` and `_rebuild_tensor_v2(...)` may be called.
    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value> {
        let Value::Tuple(args) = args else {
            return Err(self.malformed(format!("REDUCE arguments are a {}, not a tuple", args.kind())));
        };
        match callable {
            Value::Global(Global::OrderedDict) if args.items.is_empty() => Ok(Value::OrderedDict(Rc::default())),
            Value::Global(Global::RebuildTensorV2) => self.rebuild_tensor(&args.items),
            other => Err(WeightsError::NotCallable {
                callable: format!("{} with {}", other.kind(), Value::Tuple(args).kind()),
                offset: self.op,
            }),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])`.
    fn rebuild_tensor(&self, args: &[Value]) -> Result<Value> {
        let [storage, offset, size, stride, requires_grad, hooks, rest @ ..] = args else {
            return Err(self.malformed(format!("_rebuild_tensor_v2 with {} arguments", args.len())));
        };
        let Value::Storage(storage) = storage else {
            return Err(self.malformed(format!("tensor storage is a {}", storage.kind())));
        };
        let offset = self.non_negative(offset, "tensor storage offset")?;
        let shape = self.int_tuple(size, "tensor size")?;
        let strides = self.int_tuple(stride, "tensor stride")?;
        if shape.len() != strides.len() {
            return Err(self.malformed(format!(
                "tensor size has {} dimensions, stride {}",
                shape.len(),
                strides.len()
            )));
        }
        if !matches!(requires_grad, Value::Bool(_)) {
            return Err(self.malformed(format!("requires_grad is a {}", requires_grad.kind())));
        }
        let no_hooks = matches!(hooks, Value::OrderedDict(d) if d.borrow().entries().is_empty());
        if !no_hooks {
            return Err(self.malformed("backward hooks must be an empty OrderedDict"));
        }
        match rest {
            [] | [Value::None] | [Value::Dict(_)] => {}
            _ => return Err(self.malformed("unexpected extra _rebuild_tensor_v2 arguments")),
        }
        let storage = storage.clone();
        Ok(Value::Tensor(Rc::new(TensorRef { storage, offset, shape, strides })))
    }

    /// `BINPERSID`: `('storage', torch.XStorage, key, location, numel[, view_metadata=None])`.
    fn persistent_load(&mut self, pid: Value) -> Result<Rc<StorageRef>> {
        let Value::Tuple(pid) = pid else {
            return Err(self.malformed(format!("persistent id is a {}", pid.kind())));
        };
        let [Value::Str(tag), Value::Global(Global::Storage(dtype)), Value::Str(key), Value::Str(location), numel, view @ ..] =
            pid.items.as_slice()
        else {
            return Err(
                self.malformed("persistent id is not ('storage', torch.<Type>Storage, key, location, numel, None)")
            );
        };
        if &**tag != "storage" {
            return Err(self.malformed(format!("persistent id of kind `{tag}`")));
        }
        match view {
            [] | [Value::None] => {}
            _ => return Err(self.malformed("storage views (view_metadata) are not supported")),
        }
        let numel = self.non_negative(numel, "storage numel")?;
        let storage = StorageRef { key: key.clone(), dtype: *dtype, numel, location: location.clone() };
        self.storages.declare(storage, self.op)
    }

    /// `BUILD` on the state dict sets its `_metadata` attribute: checked to be a dict, then dropped
    /// (safetensors has no place for it and nothing reads it).
    fn build(&mut self) -> Result<()> {
        let state = self.pop()?;
        let Some(Value::OrderedDict(_)) = self.stack.last() else {
            return Err(self.malformed("BUILD on something that is not an OrderedDict"));
        };
        if !matches!(state, Value::Dict(_) | Value::None) {
            return Err(self.malformed(format!("OrderedDict state is a {}", state.kind())));
        }
        Ok(())
    }

    // ---- argument checks ----

    fn non_negative(&self, value: &Value, what: &str) -> Result<u64> {
        match value {
            Value::Int(i) => u64::try_from(*i).map_err(|_| self.malformed(format!("{what} {i} out of range"))),
            other => Err(self.malformed(format!("{what} is a {}, not an int", other.kind()))),
        }
    }

    fn int_tuple(&self, value: &Value, what: &str) -> Result<Vec<u64>> {
        let Value::Tuple(t) = value else {
            return Err(self.malformed(format!("{what} is a {}, not a tuple", value.kind())));
        };
        t.items.iter().map(|v| self.non_negative(v, what)).collect()
    }

    fn malformed(&self, reason: impl Into<String>) -> WeightsError {
        WeightsError::malformed(self.op, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a pickle built from raw opcodes and returns its value.
    fn run(bytes: &[u8]) -> Result<Value> {
        let mut storages = StorageTable::default();
        load(bytes, 0, &mut storages).map(|(value, end)| {
            assert_eq!(end, bytes.len(), "the pickle should end at its STOP");
            value
        })
    }

    fn int(value: &Value) -> i128 {
        match value {
            Value::Int(i) => *i,
            other => panic!("expected an int, got {}", other.kind()),
        }
    }

    fn tuple_items(value: &Value) -> Vec<Value> {
        match value {
            Value::Tuple(t) => t.items.clone(),
            other => panic!("expected a tuple, got {}", other.kind()),
        }
    }

    #[test]
    fn integers_of_every_width() {
        // (BININT1 200, BININT2 0x1234, BININT -5, LONG1 2 bytes 0xff7f = 32767... sign) as a tuple
        let bytes = b"\x80\x02(K\xc8M\x34\x12J\xfb\xff\xff\xff\x8a\x02\xff\x7f\x8a\x01\xff\x8a\x00t.";
        let items = tuple_items(&run(bytes).unwrap());
        let ints: Vec<i128> = items.iter().map(int).collect();
        assert_eq!(ints, vec![200, 0x1234, -5, 0x7fff, -1, 0]);
    }

    #[test]
    fn long1_reads_the_legacy_magic_number() {
        let mut bytes = vec![0x80, 2, 0x8a, 10];
        bytes.extend_from_slice(&0x1950a86a20f9469cfc6c_u128.to_le_bytes()[..10]);
        bytes.push(b'.');
        assert_eq!(int(&run(&bytes).unwrap()), 0x1950a86a20f9469cfc6c);
    }

    #[test]
    fn long1_wider_than_16_bytes_is_refused() {
        let mut bytes = vec![0x80, 2, 0x8a, 17];
        bytes.extend_from_slice(&[1; 17]);
        bytes.push(b'.');
        assert!(matches!(run(&bytes), Err(WeightsError::Malformed { offset: 2, .. })));
    }

    #[test]
    fn strings_memo_and_tuple_sizes() {
        // ('ab', 'é', 'ab') using BINUNICODE, SHORT_BINUNICODE, BINPUT/BINGET and TUPLE3
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"\x80\x02X\x02\x00\x00\x00abq\x07\x8c\x02");
        bytes.extend_from_slice("é".as_bytes());
        bytes.extend_from_slice(b"h\x07\x87.");
        let items = tuple_items(&run(&bytes).unwrap());
        let strs: Vec<String> = items
            .iter()
            .map(|v| match v {
                Value::Str(s) => s.to_string(),
                other => panic!("expected str, got {}", other.kind()),
            })
            .collect();
        assert_eq!(strs, ["ab", "é", "ab"]);

        let one = tuple_items(&run(b"\x80\x02K\x01\x85.").unwrap());
        let two = tuple_items(&run(b"\x80\x02K\x01K\x02\x86.").unwrap());
        let empty = tuple_items(&run(b"\x80\x02).").unwrap());
        assert_eq!((one.len(), two.len(), empty.len()), (1, 2, 0));
    }

    #[test]
    fn long_memo_indices() {
        let bytes = b"\x80\x02K\x2ar\x00\x00\x01\x00j\x00\x00\x01\x00\x86.";
        let items = tuple_items(&run(bytes).unwrap());
        assert_eq!(items.iter().map(int).collect::<Vec<_>>(), vec![42, 42]);
    }

    #[test]
    fn dicts_lists_and_overwrite_semantics() {
        // {'a': 0, 'b': [None, True, False], 'a': 1}: the second 'a' overwrites, keeping its place
        let bytes = b"\x80\x02}(X\x01\x00\x00\x00aK\x00X\x01\x00\x00\x00b](N\x88\x89eX\x01\x00\x00\x00aK\x01u.";
        let value = run(bytes).unwrap();
        let Value::Dict(dict) = value else { panic!("expected a dict") };
        let dict = dict.borrow();
        let keys: Vec<_> = dict.entries().iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![DictKey::Str("a".into()), DictKey::Str("b".into())]);
        assert_eq!(int(dict.get("a").unwrap()), 1);
        let Some(Value::List(list)) = dict.get("b") else { panic!("expected a list") };
        let list = list.borrow();
        assert!(matches!(list.as_slice(), [Value::None, Value::Bool(true), Value::Bool(false)]));
    }

    #[test]
    fn setitem_and_append_single() {
        let value = run(b"\x80\x02}X\x01\x00\x00\x00kK\x05s.").unwrap();
        let Value::Dict(dict) = value else { panic!("expected a dict") };
        assert_eq!(int(dict.borrow().get("k").unwrap()), 5);

        let value = run(b"\x80\x02]K\x05a.").unwrap();
        let Value::List(list) = value else { panic!("expected a list") };
        assert_eq!(list.borrow().iter().map(int).collect::<Vec<_>>(), vec![5]);
    }

    #[test]
    fn ordered_dict_reduce_and_build() {
        // OrderedDict() then BUILD with {'_metadata': {}} (dropped)
        let bytes = b"\x80\x02ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00_metadata}sb.";
        assert!(matches!(run(bytes).unwrap(), Value::OrderedDict(_)));
    }

    #[test]
    fn rebuild_tensor_with_persistent_storage() {
        let bytes = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06NtQK\x01K\x02K\x02\x86K\x01K\x02\x86\x89ccollections\nOrderedDict\n)RtR.";
        let mut storages = StorageTable::default();
        let (value, _) = load(bytes, 0, &mut storages).unwrap();
        let Value::Tensor(tensor) = value else { panic!("expected a tensor") };
        assert_eq!((tensor.offset, tensor.shape.clone(), tensor.strides.clone()), (1, vec![2, 2], vec![1, 2]));
        assert_eq!(tensor.storage.dtype, StorageDtype::F16);
        assert_eq!(tensor.storage.numel, 6);
        assert_eq!(storages.get("0").unwrap().key.as_ref(), "0");
    }

    #[test]
    fn conflicting_storage_declarations_are_refused() {
        let pid = |numel: u8| {
            let mut b =
                b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00kX\x03\x00\x00\x00cpuK".to_vec();
            b.extend_from_slice(&[numel, b'N', b't', b'Q']);
            b
        };
        let mut bytes = b"\x80\x02".to_vec();
        bytes.extend(pid(4));
        bytes.extend(pid(5));
        bytes.extend_from_slice(b"\x86.");
        let err = run(&bytes).unwrap_err();
        assert!(matches!(&err, WeightsError::Malformed { reason, .. } if reason.contains("declared as")), "{err:?}");
    }

    #[test]
    fn globals_outside_the_whitelist_are_refused_with_their_offset() {
        let err = run(b"\x80\x02cos\nsystem\n.").unwrap_err();
        match err {
            WeightsError::ForbiddenGlobal { module, name, offset } => {
                assert_eq!((module.as_str(), name.as_str(), offset), ("os", "system", 2));
            }
            other => panic!("expected ForbiddenGlobal, got {other:?}"),
        }
        // A storage class we cannot map is not whitelisted either.
        assert!(matches!(run(b"\x80\x02ctorch\nComplexFloatStorage\n."), Err(WeightsError::ForbiddenGlobal { .. })));
    }

    #[test]
    fn only_whitelisted_callables_are_reduced() {
        // torch.FloatStorage() — a whitelisted global, but not a callable
        let err = run(b"\x80\x02ctorch\nFloatStorage\n)R.").unwrap_err();
        assert!(matches!(err, WeightsError::NotCallable { offset: 23, .. }), "{err:?}");
        // OrderedDict with arguments
        let err = run(b"\x80\x02ccollections\nOrderedDict\n]\x85R.").unwrap_err();
        assert!(matches!(err, WeightsError::NotCallable { .. }), "{err:?}");
        // a string is not callable
        let err = run(b"\x80\x02X\x00\x00\x00\x00)R.").unwrap_err();
        assert!(matches!(err, WeightsError::NotCallable { .. }), "{err:?}");
    }

    #[test]
    fn unknown_opcodes_are_refused() {
        // BINFLOAT is legal pickle but not part of what we accept.
        let err = run(b"\x80\x02G\x00\x00\x00\x00\x00\x00\x00\x00.").unwrap_err();
        assert!(matches!(err, WeightsError::UnsupportedOpcode { opcode: b'G', offset: 2 }));
        assert!(matches!(run(b"\x80\x09N."), Err(WeightsError::Malformed { offset: 0, .. })));
    }

    #[test]
    fn truncation_anywhere_is_an_error() {
        let whole = b"\x80\x02(X\x03\x00\x00\x00abcJ\x01\x02\x03\x04ccollections\nOrderedDict\nt.";
        for cut in 0..whole.len() {
            let err = run(&whole[..cut]).unwrap_err();
            assert!(matches!(err, WeightsError::Truncated { .. }), "cut at {cut}: {err:?}");
        }
        run(whole).unwrap();
    }

    #[test]
    fn lying_lengths_do_not_allocate() {
        // BINUNICODE claiming 4 GiB in a 10-byte pickle.
        let err = run(b"\x80\x02X\xff\xff\xff\xff.").unwrap_err();
        assert!(matches!(err, WeightsError::Truncated { offset: 2, .. }), "{err:?}");
    }

    #[test]
    fn stack_discipline_is_checked() {
        for bytes in [
            &b"\x80\x02."[..],                 // STOP on an empty stack
            b"\x80\x02NN.",                    // two values left
            b"\x80\x02(N.",                    // open mark
            b"\x80\x02t.",                     // TUPLE without MARK
            b"\x80\x02\x86.",                  // TUPLE2 on an empty stack
            b"\x80\x02N(\x85.",                // TUPLE1 cannot reach below a mark
            b"\x80\x02h\x03.",                 // empty memo slot
            b"\x80\x02q\x00N.",                // BINPUT on an empty stack
            b"\x80\x02NNs.",                   // SETITEM on None
            b"\x80\x02}](K\x01u.",             // SETITEMS with an odd count
            b"\x80\x02}]K\x01s.",              // list as a dict key
            b"\x80\x02NK\x01a.",               // APPEND on None
            b"\x80\x02X\x01\x00\x00\x00\xff.", // invalid UTF-8
        ] {
            let err = run(bytes).unwrap_err();
            assert!(matches!(err, WeightsError::Malformed { .. }), "{bytes:?}: {err:?}");
        }
    }

    #[test]
    fn nested_containers_are_read_only_so_no_cycle_can_form() {
        // l = []; l.append(l)
        let err = run(b"\x80\x02]q\x00h\x00a.").unwrap_err();
        assert!(matches!(err, WeightsError::Malformed { .. }), "{err:?}");
        // a = []; b = (a,); a.append(1) — a is inside b now
        let err = run(b"\x80\x02]q\x00\x85h\x00K\x01a.").unwrap_err();
        assert!(matches!(err, WeightsError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = b"\x80\x02)".to_vec();
        bytes.extend(std::iter::repeat_n(0x85, MAX_NESTING + 5));
        bytes.push(b'.');
        let err = run(&bytes).unwrap_err();
        assert!(
            matches!(err, WeightsError::NestingTooDeep { offset, limit: MAX_NESTING } if offset == 3 + MAX_NESTING - 1),
            "{err:?}"
        );
        // exactly at the limit is fine
        let mut bytes = b"\x80\x02)".to_vec();
        bytes.extend(std::iter::repeat_n(0x85, MAX_NESTING - 1));
        bytes.push(b'.');
        run(&bytes).unwrap();
    }

    #[test]
    fn a_load_stops_at_its_stop_and_reports_where() {
        let two = b"\x80\x02K\x01.\x80\x02K\x02.";
        let mut storages = StorageTable::default();
        let (first, end) = load(two, 0, &mut storages).unwrap();
        let (second, end2) = load(two, end, &mut storages).unwrap();
        assert_eq!((int(&first), end, int(&second), end2), (1, 5, 2, 10));
    }
}
