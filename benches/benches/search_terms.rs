//! How fast text becomes search terms (`chat_core::search::terms`), which every store does for
//! every message it indexes, and the memory store for every message a search scans.
//!
//! Run: `cargo bench -p benches --bench search_terms`; to compare two builds, run the first with
//! `-- --save-baseline before` and the second with `-- --baseline before`.

use std::hint::black_box;

use chat_core::search::terms;
use criterion::{Criterion, criterion_group, criterion_main};

fn split(c: &mut Criterion) {
    let texts = [
        (
            "short_ascii",
            "Lunch tomorrow? The team meets in room 4 at noon, bring the notes!".to_owned(),
        ),
        (
            "long_ascii",
            "the quick brown fox jumps over the lazy dog while 42 chat messages wait; ".repeat(30),
        ),
        (
            "accented",
            "Café número uno, crème brûlée à la carte pour l'équipe".to_owned(),
        ),
        (
            "japanese",
            "東京タワーで会いましょう、明日の午後三時です".to_owned(),
        ),
    ];
    let mut group = c.benchmark_group("terms");
    for (name, text) in &texts {
        group.bench_function(*name, |b| b.iter(|| terms(black_box(text))));
    }
    group.finish();
}

criterion_group!(benches, split);
criterion_main!(benches);
