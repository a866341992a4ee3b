//! Decompressing and hashing a layer on a second thread while the first writes its files:
//! unpacking is then bound by whichever of the two is slower, not by their sum.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender};

/// Bytes handed over per message.
const CHUNK: usize = 256 * 1024;
/// Messages in flight: the memory this costs is at most `DEPTH * CHUNK`.
const DEPTH: usize = 8;

/// The reading end: the bytes the producer thread read, in order.
#[derive(Debug)]
pub struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The producer ended: it has sent everything.
                Err(_) => self.done = true,
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A channel for [`produce`] and [`ChannelReader`].
pub fn channel() -> (SyncSender<io::Result<Vec<u8>>>, ChannelReader) {
    let (tx, rx) = std::sync::mpsc::sync_channel(DEPTH);
    (tx, ChannelReader { rx, chunk: Vec::new(), pos: 0, done: false })
}

/// Reads `source` to its end into `tx`; stops early when the reader is gone. Returns `source`
/// so that its state (a digest) can be taken.
pub fn produce<R: Read>(mut source: R, tx: SyncSender<io::Result<Vec<u8>>>) -> R {
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match source.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return source;
                }
            }
        }
        if filled == 0 {
            return source;
        }
        chunk.truncate(filled);
        if tx.send(Ok(chunk)).is_err() {
            return source;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_whole_and_in_order() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let (tx, mut reader) = channel();
        let copy = data.clone();
        let producer = std::thread::spawn(move || produce(&copy[..], tx).len());
        let mut got = Vec::new();
        reader.read_to_end(&mut got).expect("read");
        assert_eq!(got, data);
        assert_eq!(producer.join().expect("join"), 0, "the source was read to its end");
    }

    #[test]
    fn an_error_reaches_the_reader() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("corrupt stream"))
            }
        }
        let (tx, mut reader) = channel();
        let producer = std::thread::spawn(move || {
            produce(Failing, tx);
        });
        let err = reader.read_to_end(&mut Vec::new()).expect_err("error");
        assert_eq!(err.to_string(), "corrupt stream");
        producer.join().expect("join");
    }
}
