//! Parallel gzip, as pigz writes it: the stream is cut into fixed 1 MiB blocks, each block is
//! compressed as raw deflate (ending in a sync flush, so it stops on a byte boundary) by a pool
//! of worker threads, and the results are joined in order into one gzip member with a final
//! empty block, the CRC-32 and the length. Blocks do not share a dictionary, which costs well
//! under 1 % of size. The bytes depend only on the input and the level, never on the number
//! of threads or their timing, so reproducible builds stay byte-identical on any machine.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

/// Uncompressed bytes per independently compressed block.
pub const BLOCK: usize = 1 << 20;

/// gzip header: deflate, no flags, mtime 0, no extra flags, OS unknown (as `gzip -n` leaves it
/// apart from the OS byte).
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];

/// A final, empty deflate block with fixed Huffman codes (BFINAL=1, BTYPE=01, end of block).
const LAST_BLOCK: [u8; 2] = [0x03, 0x00];

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

/// A gzip writer that compresses on `threads` worker threads.
pub struct ParGzWriter<W: Write> {
    /// Taken by `finish`.
    inner: Option<W>,
    crc: flate2::Crc,
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

/// Bytes of each probe window in [`incompressible`].
const PROBE_WINDOW: usize = 16 * 1024;
/// Probe windows per block (start, two inner points, end).
const PROBE_WINDOWS: usize = 4;
/// A block whose probes shrink by less than this fraction is stored.
const MIN_SAVING: f64 = 0.03;

/// Whether `block` is not worth searching: four 16 KiB windows compressed at level 1 save
/// under 3 %. Binaries' compressed sections, archives, images and random data are stored
/// (5 bytes per 64 KiB) instead of costing a level-6 search that finds nothing. Depends only
/// on the bytes, so the output stays deterministic.
fn incompressible(block: &[u8]) -> bool {
    if block.len() < PROBE_WINDOW * PROBE_WINDOWS {
        return false;
    }
    let step = (block.len() - PROBE_WINDOW) / (PROBE_WINDOWS - 1);
    let mut c = flate2::Compress::new(flate2::Compression::new(1), false);
    let mut out = Vec::with_capacity(PROBE_WINDOW + 1024);
    let mut total_out = 0usize;
    for w in 0..PROBE_WINDOWS {
        let window = &block[w * step..w * step + PROBE_WINDOW];
        c.reset();
        out.clear();
        if c.compress_vec(window, &mut out, flate2::FlushCompress::Finish).is_err() {
            return false;
        }
        // Output that filled the buffer: certainly no saving.
        total_out += if c.total_in() < window.len() as u64 { window.len() } else { out.len() };
    }
    (total_out as f64) > (PROBE_WINDOW * PROBE_WINDOWS) as f64 * (1.0 - MIN_SAVING)
}

/// `block` as non-final stored deflate blocks (at most 65,535 bytes each), byte-aligned like
/// a sync flush's output, so blocks still join into one stream.
fn stored_blocks(block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.len() + block.len() / 65_535 * 5 + 5);
    for chunk in block.chunks(65_535) {
        let len = chunk.len() as u16;
        // BFINAL=0, BTYPE=00, padded to the byte boundary.
        out.push(0);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Compresses one block as raw deflate ending in a sync flush (stored when it would not
/// compress, or at level 0).
fn deflate_block(level: u32, block: &[u8]) -> io::Result<Vec<u8>> {
    if level == 0 || incompressible(block) {
        return Ok(stored_blocks(block));
    }
    let mut c = flate2::Compress::new(flate2::Compression::new(level), false);
    let mut out = Vec::with_capacity(block.len() + block.len() / 8 + 64);
    loop {
        let consumed = usize::try_from(c.total_in()).unwrap_or(block.len()).min(block.len());
        c.compress_vec(&block[consumed..], &mut out, flate2::FlushCompress::Sync).map_err(io::Error::other)?;
        // zlib's rule: a flush is complete once it leaves room in the output.
        if usize::try_from(c.total_in()).unwrap_or(0) >= block.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(64 * 1024);
    }
}

impl<W: Write> ParGzWriter<W> {
    /// A writer at gzip `level` (0-9) onto `inner`, with `threads` workers (at least one).
    pub fn new(mut inner: W, level: u32, threads: usize) -> io::Result<Self> {
        inner.write_all(&HEADER)?;
        let threads = threads.max(1);
        let (jobs_tx, jobs_rx) = std::sync::mpsc::sync_channel::<Job>(threads);
        let (done_tx, done) = std::sync::mpsc::channel::<Done>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let level = level.min(9);
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads {
            let (jobs_rx, done_tx): (Arc<Mutex<Receiver<Job>>>, Sender<Done>) = (jobs_rx.clone(), done_tx.clone());
            workers.push(std::thread::Builder::new().name(format!("strata-gzip-{n}")).spawn(move || {
                loop {
                    let job = match jobs_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, block)) = job else { return };
                    if done_tx.send((seq, deflate_block(level, &block))).is_err() {
                        return;
                    }
                }
            })?);
        }
        Ok(Self {
            inner: Some(inner),
            crc: flate2::Crc::new(),
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
        self.crc.update(&block);
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

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() {
            self.submit()?;
        }
        while self.in_flight > 0 {
            self.collect_one()?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let mut inner = self.inner.take().ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        inner.write_all(&LAST_BLOCK)?;
        inner.write_all(&self.crc.sum().to_le_bytes())?;
        inner.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(inner)
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
        flate2::read::GzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
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
        assert!(incompressible(&data[BLOCK * 2..BLOCK * 3]));
        assert!(!incompressible(&data[..BLOCK]));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
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
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn empty_input_is_a_valid_empty_gzip() {
        let gz = ParGzWriter::new(Vec::new(), 6, 2).unwrap().finish().unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }
}
