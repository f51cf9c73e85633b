//! A tiny synthetic shop for training tests: items with seeded random "text" (every item) and
//! "image" (two items in three) features, and users who walk the items in steps of +1 from random
//! starts, so a few epochs learn something. The last `late_users` come much later and are the only
//! ones to reach the last `new_items` items: under the cold protocol those items are new.

use std::path::{Path, PathBuf};

use omakase::encoders::features::{Features, ModalityFeatures};

/// What [`shop`] makes.
#[derive(Debug, Clone, Copy)]
pub struct ShopSpec {
    pub items: usize,
    pub users: usize,
    pub late_users: usize,
    pub new_items: usize,
    pub seed: u64,
    /// Prefix of item and user ids (`i` → `i0`, `ui0`), so two shops share no id.
    pub prefix: char,
}

impl Default for ShopSpec {
    fn default() -> Self {
        ShopSpec { items: 24, users: 20, late_users: 4, new_items: 4, seed: 11, prefix: 'i' }
    }
}

/// SplitMix64: deterministic numbers without an RNG crate.
pub struct Numbers(pub u64);

impl Numbers {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// Writes `dir/data/{items.jsonl, interactions.csv}` and `dir/features.safetensors`; returns
/// (the dataset folder, the features file).
pub fn shop(dir: &Path, spec: ShopSpec) -> (PathBuf, PathBuf) {
    let ShopSpec { items: n, users, late_users, new_items, seed, prefix: p } = spec;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let items: String =
        (0..n).map(|i| format!("{{\"item_id\": \"{p}{i}\", \"title\": \"item {i}\", \"image\": null}}\n")).collect();
    std::fs::write(data.join("items.jsonl"), items).unwrap();
    let mut numbers = Numbers(seed);
    let mut interactions = String::from("user_id,item_id,timestamp\n");
    for user in 0..users {
        let start = numbers.next() as usize % n;
        let (first_time, span) = if user < users - late_users { (user * 3, n - new_items) } else { (1000, n) };
        for t in 0..6 + numbers.next() as usize % 8 {
            interactions += &format!("u{p}{user},{p}{},{}\n", (start + t) % span, first_time + t);
        }
    }
    std::fs::write(data.join("interactions.csv"), interactions).unwrap();
    let mut text = ModalityFeatures::absent(n, 384, None);
    let mut image = ModalityFeatures::absent(n, 1280, None);
    for i in 0..n {
        text.set_row(i, &(0..384).map(|_| numbers.uniform()).collect::<Vec<_>>(), [i as u8; 32]);
        if i % 3 != 0 {
            image.set_row(i, &(0..1280).map(|_| numbers.uniform()).collect::<Vec<_>>(), [i as u8 + 100; 32]);
        }
    }
    let features = Features { item_ids: (0..n).map(|i| format!("{p}{i}")).collect(), text, image, text_template: None };
    let path = dir.join("features.safetensors");
    features.save(&path).unwrap();
    (data, path)
}
