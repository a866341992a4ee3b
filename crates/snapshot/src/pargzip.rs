//! Parallel gzip in independent members, as BGZF and eStargz write it: the stream is cut into
//! fixed 1 MiB blocks, and a pool of worker threads turns each block into a complete gzip member
//! (header, deflate, CRC-32, length) with libdeflate, which compresses whole buffers 1.2-3x
//! faster than zlib at the same size. The members are written in order; RFC 1952 defines a gzip
//! file as a series of members, and every layer reader (Go's `compress/gzip`, containerd's
//! `unpigz`, GNU gzip, Python, flate2's `MultiGzDecoder`) reads them as one stream. A member
//! costs 18 bytes of header and trailer per MiB. The bytes depend only on the input and the
//! level, never on the number of threads or their timing, so reproducible builds stay
//! byte-identical on any machine.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use libdeflater::{CompressionLvl, Compressor};

/// Uncompressed bytes per independently compressed block.
pub const BLOCK: usize = 1 << 20;

/// gzip member header: deflate, no flags, mtime 0, no extra flags, OS unknown (libdeflate's).
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

/// A gzip writer that compresses on `threads` worker threads.
pub struct ParGzWriter<W: Write> {
    /// Taken by `finish`.
    inner: Option<W>,
    buf: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// Finished blocks that arrived before an earlier one.
    waiting: BTreeMap<u64, Vec<u8>>,
    next_seq: u64,
    next_out: u64,
    in_flight: usize,
    max_in_flight: usize,
}

/// Bytes of each probe window in [`Worker::incompressible`].
const PROBE_WINDOW: usize = 16 * 1024;
/// Probe windows per block (start, two inner points, end).
const PROBE_WINDOWS: usize = 4;
/// A block whose probes shrink by less than this fraction is stored.
const MIN_SAVING: f64 = 0.03;

/// One worker's compressors, kept across blocks (libdeflate allocates its tables once).
struct Worker {
    level: u32,
    /// The block compressor; `None` at level 0.
    block: Option<Compressor>,
    /// Level 1, for the probes.
    probe: Compressor,
    probe_out: Vec<u8>,
}

impl Worker {
    fn new(level: u32) -> io::Result<Self> {
        let lvl =
            |l: u32| i32::try_from(l).ok().and_then(|l| CompressionLvl::new(l).ok()).ok_or_else(|| io::Error::other(format!("gzip level {l} is out of range")));
        let block = if level == 0 { None } else { Some(Compressor::new(lvl(level)?)) };
        Ok(Self { level, block, probe: Compressor::new(lvl(1)?), probe_out: vec![0; PROBE_WINDOW] })
    }

    /// Whether `block` is not worth searching: four 16 KiB windows compressed at level 1 save
    /// under 3 % in all (decided after the first window for most compressible data). Binaries'
    /// compressed sections, archives, images and random data are stored (5 bytes per 64 KiB)
    /// instead of costing a search that finds nothing. Depends only on the bytes, so the output
    /// stays deterministic.
    fn incompressible(&mut self, block: &[u8]) -> bool {
        if block.len() < PROBE_WINDOW * PROBE_WINDOWS {
            return false;
        }
        let step = (block.len() - PROBE_WINDOW) / (PROBE_WINDOWS - 1);
        let budget = (PROBE_WINDOW * PROBE_WINDOWS) as f64 * MIN_SAVING;
        let mut saved = 0.0;
        for w in 0..PROBE_WINDOWS {
            let window = &block[w * step..w * step + PROBE_WINDOW];
            // Output that does not fit in the window's own size: no saving.
            if let Ok(n) = self.probe.deflate_compress(window, &mut self.probe_out) {
                saved += (PROBE_WINDOW - n) as f64;
            }
            if saved >= budget {
                return false;
            }
        }
        true
    }

    /// One block as a complete gzip member (stored when it would not compress, or at level 0).
    fn member(&mut self, block: &[u8]) -> io::Result<Vec<u8>> {
        let stored = self.level == 0 || self.incompressible(block);
        match self.block.as_mut() {
            Some(c) if !stored => {
                let mut out = vec![0; c.gzip_compress_bound(block.len())];
                let n = c.gzip_compress(block, &mut out).map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
                out.truncate(n);
                Ok(out)
            }
            _ => Ok(stored_member(block)),
        }
    }
}

/// `block` as a gzip member of stored deflate blocks (at most 65,535 bytes each).
fn stored_member(block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER.len() + block.len() + block.len() / 65_535 * 5 + 5 + 8);
    out.extend_from_slice(&HEADER);
    let mut chunks = block.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        // An empty final stored block.
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let len = chunk.len() as u16;
        // BFINAL on the last, BTYPE=00, padded to the byte boundary.
        out.push(u8::from(chunks.peek().is_none()));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&libdeflater::crc32(block).to_le_bytes());
    out.extend_from_slice(&(block.len() as u32).to_le_bytes());
    out
}

impl<W: Write> ParGzWriter<W> {
    /// A writer at gzip `level` (0-9) onto `inner`, with `threads` workers (at least one).
    pub fn new(inner: W, level: u32, threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        let (jobs_tx, jobs_rx) = std::sync::mpsc::sync_channel::<Job>(threads);
        let (done_tx, done) = std::sync::mpsc::channel::<Done>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let level = level.min(9);
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads {
            let (jobs_rx, done_tx): (Arc<Mutex<Receiver<Job>>>, Sender<Done>) = (jobs_rx.clone(), done_tx.clone());
            let mut worker = Worker::new(level)?;
            workers.push(std::thread::Builder::new().name(format!("strata-gzip-{n}")).spawn(move || {
                loop {
                    let job = match jobs_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, block)) = job else { return };
                    if done_tx.send((seq, worker.member(&block))).is_err() {
                        return;
                    }
                }
            })?);
        }
        Ok(Self {
            inner: Some(inner),
            buf: Vec::with_capacity(BLOCK),
            jobs: Some(jobs_tx),
            done,
            workers,
            waiting: BTreeMap::new(),
            next_seq: 0,
            next_out: 0,
            in_flight: 0,
            max_in_flight: threads * 2,
        })
    }

    /// Hands the buffered block to the workers, first writing out finished ones while too
    /// many are in flight (so memory stays at a few blocks).
    fn submit(&mut self) -> io::Result<()> {
        while self.in_flight >= self.max_in_flight {
            self.collect_one()?;
        }
        let block = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        jobs.send((self.next_seq, block)).map_err(|_| io::Error::other("gzip workers stopped"))?;
        self.next_seq += 1;
        self.in_flight += 1;
        Ok(())
    }

    /// Waits for one finished block and writes every block that is now next in order.
    fn collect_one(&mut self) -> io::Result<()> {
        let (seq, result) = self.done.recv().map_err(|_| io::Error::other("gzip workers stopped"))?;
        self.in_flight -= 1;
        self.waiting.insert(seq, result?);
        let inner = self.inner.as_mut().ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        while let Some(block) = self.waiting.remove(&self.next_out) {
            inner.write_all(&block)?;
            self.next_out += 1;
        }
        Ok(())
    }

    /// Compresses what is left, writes the last member and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        // An empty stream is still one (empty) member.
        if !self.buf.is_empty() || self.next_seq == 0 {
            self.submit()?;
        }
        while self.in_flight > 0 {
            self.collect_one()?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.inner.take().ok_or_else(|| io::Error::other("gzip writer already finished"))
    }
}

impl<W: Write> std::fmt::Debug for ParGzWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParGzWriter").field("blocks", &self.next_seq).field("in_flight", &self.in_flight).finish()
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= BLOCK {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParGzWriter<W> {
    fn drop(&mut self) {
        // Unfinished (an error earlier): stop the workers; the partial output is discarded
        // by the caller, which never commits a blob it did not finish.
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// 3.5 blocks: compressible text, then pseudo-random bytes.
    fn sample() -> Vec<u8> {
        let mut data: Vec<u8> = (0..BLOCK * 2).map(|i| b"strata layer "[i % 13]).collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..(BLOCK * 3 / 2) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.push(x as u8);
        }
        data
    }

    fn compress(data: &[u8], threads: usize) -> Vec<u8> {
        let mut w = ParGzWriter::new(Vec::new(), 6, threads).unwrap();
        // Odd write sizes cross block boundaries.
        for piece in data.chunks(333_333) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_and_ignores_thread_count() {
        let data = sample();
        let one = compress(&data, 1);
        assert_eq!(one, compress(&data, 4), "same bytes whatever the thread count");
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data, "a single gzip member");
        assert!(one.len() < data.len(), "the text part compresses");
    }

    #[test]
    fn gzip_accepts_it() {
        let data = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        std::fs::write(&path, compress(&data, 2)).unwrap();
        let out = std::process::Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, data);
        let test = std::process::Command::new("gzip").arg("-t").arg(&path).status().unwrap();
        assert!(test.success(), "gzip -t accepts every member");
    }

    #[test]
    fn one_member_per_block_each_a_valid_gzip() {
        let data = sample();
        let gz = compress(&data, 2);
        // Walk the members with a single-member decoder: four blocks, four members.
        let mut rest = &gz[..];
        let mut back = Vec::new();
        let mut members = 0;
        while !rest.is_empty() {
            let mut d = flate2::bufread::GzDecoder::new(rest);
            d.read_to_end(&mut back).unwrap();
            rest = d.into_inner();
            members += 1;
        }
        assert_eq!(members, data.len().div_ceil(BLOCK));
        assert_eq!(back, data);
    }

    #[test]
    fn random_blocks_are_stored_text_blocks_compressed() {
        let data = sample();
        let gz = compress(&data, 2);
        // 2 MiB of text shrink to almost nothing; 1.5 MiB of random bytes are stored with
        // 5 bytes per 64 KiB, never bigger than that.
        let random = BLOCK * 3 / 2;
        assert!(gz.len() < random + random / 65_535 * 5 + 64 * 1024, "{} bytes", gz.len());
        assert!(gz.len() >= random, "random data does not shrink");
        let mut w = Worker::new(6).unwrap();
        assert!(w.incompressible(&data[BLOCK * 2..BLOCK * 3]));
        assert!(!w.incompressible(&data[..BLOCK]));
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn level_zero_stores_everything() {
        let data = sample();
        let mut w = ParGzWriter::new(Vec::new(), 0, 1).unwrap();
        w.write_all(&data).unwrap();
        let gz = w.finish().unwrap();
        assert!(gz.len() > data.len());
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn empty_input_is_a_valid_empty_gzip() {
        let gz = ParGzWriter::new(Vec::new(), 6, 2).unwrap().finish().unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }
}
