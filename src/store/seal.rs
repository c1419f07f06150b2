//! Integrity for every JSON file the store writes. The file stays plain JSON
//! (users read it with `jq`); its last member is a CRC-32 of every byte before
//! that member:
//!
//! ```text
//! {"task_id":"t",…,"metadata":{…},"checksum":"crc32:8c736521"}
//! ```
//!
//! CRC-32 catches every truncation (the suffix is gone) and every change of
//! up to 32 consecutive bits, so one flipped character anywhere is caught.

use std::io;

const MARKER: &[u8] = b",\"checksum\":\"crc32:";

/// What identifies a sealed file's contents: its checksum and length. The
/// caches record it for the checkpoint they name, so a reader can tell that
/// the file is still the one the cache describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seal {
    pub crc: u32,
    pub len: u64,
}

/// The bytes a seal adds after the content, the final newline included.
pub(crate) const SUFFIX_LEN: usize = MARKER.len() + 8 + 3;

/// Streams an unterminated JSON object (`{"a":1,"b":2`, no closing brace)
/// to `out`, then closes it with the checksum member and a newline.
pub(crate) struct SealedWriter<W: io::Write> {
    out: W,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: io::Write> SealedWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        SealedWriter {
            out,
            crc: crc32fast::Hasher::new(),
            len: 0,
        }
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.len += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    /// Writes the seal; gives back the writer and what identifies the file.
    pub(crate) fn finish(mut self) -> io::Result<(W, Seal)> {
        let crc = self.crc.clone().finalize();
        self.out.write_all(MARKER)?;
        self.out.write_all(format!("{crc:08x}\"}}\n").as_bytes())?;
        let seal = Seal {
            crc,
            len: self.len + SUFFIX_LEN as u64,
        };
        Ok((self.out, seal))
    }
}

/// The checksum a sealed file's last bytes state (not checked against its
/// contents: `verify` does that).
pub(crate) fn stated_crc(tail: &[u8]) -> Option<u32> {
    let end = tail
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let text = tail[..end].strip_suffix(b"\"}")?;
    let hex = text.get(text.len().checked_sub(8)?..)?;
    let marker = text.get(..text.len() - 8)?;
    if !marker.ends_with(MARKER) {
        return None;
    }
    let hex = std::str::from_utf8(hex).ok()?;
    hex.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        .then(|| u32::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Seals an in-memory unterminated object.
pub fn seal(open_object: &[u8]) -> Vec<u8> {
    let mut writer = SealedWriter::new(Vec::with_capacity(open_object.len() + 32));
    writer
        .write(open_object)
        .expect("writing to a Vec cannot fail");
    writer.finish().expect("writing to a Vec cannot fail").0
}

/// Checks the seal and returns the whole JSON text (checksum member included,
/// trailing newline excluded), or why the file cannot be trusted.
pub fn verify(bytes: &[u8]) -> Result<&[u8], String> {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let text = &bytes[..end];
    if text.is_empty() {
        return Err("the file is empty".into());
    }
    // `,"checksum":"crc32:` + 8 hex digits + `"}`
    let suffix_len = MARKER.len() + 8 + 2;
    if text.len() < suffix_len + 1 || !text.ends_with(b"\"}") {
        return Err("the file is truncated or was not written by the store".into());
    }
    let marker_at = text.len() - suffix_len;
    if &text[marker_at..marker_at + MARKER.len()] != MARKER {
        return Err("the file is truncated or its checksum is missing".into());
    }
    let hex = &text[marker_at + MARKER.len()..text.len() - 2];
    let stored = std::str::from_utf8(hex)
        .ok()
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or("its checksum is malformed")?;
    let actual = crc32fast::hash(&text[..marker_at]);
    if actual != stored {
        return Err(format!(
            "checksum mismatch: the file says {stored:08x}, its contents give {actual:08x}"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests;
