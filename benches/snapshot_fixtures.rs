//! Generated trees for the snapshot and layer benchmarks (included with `#[path]` by each).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

/// A small deterministic PRNG (xorshift64*), so every run generates the same bytes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const WORDS: &[&str] = &[
    "fn ",
    "let ",
    "mut ",
    "return ",
    "struct ",
    "impl ",
    "self",
    "error",
    "path",
    "layer",
    "=",
    "(",
    ")",
    "{",
    "}\n",
    "0x1f",
    "snapshot",
    "digest",
    "sha256",
    "config",
    "tar",
    "  ",
    "// comment about why\n",
    "pub ",
    "use std::io;\n",
];

/// Text-like content that compresses roughly like source code and binaries mixed (about 3x with gzip).
pub fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        let r = rng.next();
        if r.is_multiple_of(64) {
            // a run of incompressible bytes
            for _ in 0..8 {
                out.extend_from_slice(&rng.next().to_le_bytes());
            }
        } else {
            out.extend_from_slice(WORDS[(r >> 8) as usize % WORDS.len()].as_bytes());
        }
    }
    out.truncate(len);
    out
}

/// `files` small files (64 B to 4 KiB) in directories of 100, two levels deep.
pub fn small_file_tree(root: &Path, files: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    for i in 0..files {
        let dir = root.join(format!("d{:03}/s{:02}", i / 10_000, (i / 100) % 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let len = 64 + (rng.next() % 4032) as usize;
        std::fs::write(dir.join(format!("f{i:06}.txt")), content(&mut rng, len)).unwrap();
    }
}

/// About `total` bytes in files of 256 KiB (plus a few small ones), for throughput benchmarks.
pub fn bulk_tree(root: &Path, total: u64, seed: u64) {
    let mut rng = Rng::new(seed);
    let file = 256 * 1024usize;
    let n = (total / file as u64).max(1);
    for i in 0..n {
        let dir = root.join(format!("bulk/{:03}", i / 64));
        if i % 64 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("blob{i:05}.bin")), content(&mut rng, file)).unwrap();
    }
}

/// kaniko's benchmark_fs workload: `files` copies of a small context file in one directory
/// (`/workdir/somefileN`, as its make.sh writes them).
pub fn kaniko_workdir(root: &Path, files: usize) {
    let dir = root.join("workdir");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 1..=files {
        std::fs::write(dir.join(format!("somefile{i}")), b"Hello world\n").unwrap();
    }
}

/// Every entry below `root` as an upsert: the change set of a layer holding the whole tree.
pub fn tree_changes(root: &Path) -> strata_snapshot::Changes {
    let mut entries = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            entries.push(strata_snapshot::Change::Upsert(p.strip_prefix(root).unwrap().to_path_buf()));
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    let mut c = strata_snapshot::Changes { entries };
    c.normalize();
    c
}
