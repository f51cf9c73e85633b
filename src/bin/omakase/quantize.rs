//! `omakase quantize --models DIR --out DIR [--dtype q8_0|q4_0|f16]`: both frozen encoders as single
//! GGUF files (`text-<dtype>.gguf`, `image-<dtype>.gguf`) for the browser; see `omakase::encoders::gguf`.
//!
//! Each file is checked before it is written: it is read back into an encoder. Written to a temporary
//! name, then renamed. Exit 2 when the model folder is missing or unreadable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use candle_core::quantized::GgmlDType;
use omakase::encoders::gguf::{self, GgufPlan, GgufSummary};
use omakase::encoders::image::ImageEncoder;
use omakase::encoders::pipeline::default_models_dir;
use omakase::encoders::text::TextEncoder;
use omakase::weights::legacy_pth::write_atomically;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Dtype {
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "f16")]
    F16,
}

impl Dtype {
    fn ggml(self) -> GgmlDType {
        match self {
            Dtype::Q8_0 => GgmlDType::Q8_0,
            Dtype::Q4_0 => GgmlDType::Q4_0,
            Dtype::F16 => GgmlDType::F16,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Dtype::Q8_0 => "q8_0",
            Dtype::Q4_0 => "q4_0",
            Dtype::F16 => "f16",
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Folder of pretrained weights made by scripts/fetch-models.sh [default: $OMAKASE_MODELS, else models/].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Folder to write the GGUF files into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Storage type of the weight matrices (embedding tables q8_0, or f16 with f16; small tensors f32).
    #[arg(long, value_enum, default_value = "q8_0")]
    pub dtype: Dtype,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let models = args.models.clone().unwrap_or_else(default_models_dir);
    let text_dir = models.join("all-minilm-l6-v2");
    let image_path = models.join("efficientnet-lite0/efficientnet-lite0.safetensors");
    let inputs = match read_inputs(&text_dir, &image_path) {
        Ok(inputs) => inputs,
        Err(err) => {
            eprintln!("error: {err:#} (run scripts/fetch-models.sh)");
            return Ok(ExitCode::from(2));
        }
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let plan = GgufPlan::for_matrices(args.dtype.ggml());

    let (text, summary) = gguf::write_text_dir(&text_dir, plan)?;
    TextEncoder::from_gguf_bytes(&text).context("reading the text GGUF back")?;
    let text_out = args.out.join(format!("text-{}.gguf", args.dtype.name()));
    write_atomically(&text_out, &text)?;
    let text_weights = text_dir.join("model.safetensors");
    let text_len = std::fs::metadata(&text_weights).map_or(0, |m| m.len() as usize);
    report("text", &text_weights, text_len, &text_out, text.len(), &summary);

    let (image, summary) = gguf::write_image(&inputs.image_weights, plan)?;
    ImageEncoder::from_gguf_bytes(&image).context("reading the image GGUF back")?;
    let image_out = args.out.join(format!("image-{}.gguf", args.dtype.name()));
    write_atomically(&image_out, &image)?;
    report("image", &image_path, inputs.image_weights.len(), &image_out, image.len(), &summary);
    Ok(ExitCode::SUCCESS)
}

/// The model files, checked by loading them as encoders first (the text encoder's files are read
/// again by `gguf::write_text_dir`).
struct Inputs {
    image_weights: Vec<u8>,
}

fn read_inputs(text_dir: &Path, image_path: &Path) -> anyhow::Result<Inputs> {
    TextEncoder::load(text_dir).with_context(|| format!("loading the text encoder from {}", text_dir.display()))?;
    let image_weights = omakase::fs::read_bounded(image_path, omakase::fs::MAX_WEIGHTS_FILE_BYTES)?;
    ImageEncoder::from_safetensors_bytes(&image_weights)
        .with_context(|| format!("loading the image encoder from {}", image_path.display()))?;
    Ok(Inputs { image_weights })
}

fn report(what: &str, source: &Path, source_len: usize, out: &Path, out_len: usize, summary: &GgufSummary) {
    let mb = |n: usize| n as f64 / 1e6;
    let dtypes: Vec<String> = summary.tensors_by_dtype.iter().map(|(d, n)| format!("{n} {d}")).collect();
    println!(
        "{what}: {} {:.2} MB -> {} {:.2} MB ({:.1}% of f32); tensors: {}{}",
        source.display(),
        mb(source_len),
        out.display(),
        mb(out_len),
        100.0 * out_len as f64 / source_len as f64,
        dtypes.join(", "),
        if summary.skipped.is_empty() {
            String::new()
        } else {
            format!("; {} integer buffers left out (unused by the encoder)", summary.skipped.len())
        }
    );
}
