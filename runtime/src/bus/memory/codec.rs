//! The on-disk form of a record: a version byte, the timestamp, the key, the headers, then the
//! payload. Lengths are little-endian u32; decoding checks every length and never panics.

use super::state::Entry;
use crate::bus::Error;

const VERSION: u8 = 1;

/// Encodes an entry for the durable log.
pub(super) fn encode(entry: &Entry) -> Result<Vec<u8>, Error> {
    let headers: usize = entry
        .headers
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum();
    let key = entry.key.as_deref().map_or(0, str::len);
    let mut out = Vec::with_capacity(1 + 8 + 5 + key + 4 + headers + entry.payload.len());
    out.push(VERSION);
    out.extend_from_slice(&entry.timestamp.to_le_bytes());
    match &entry.key {
        Some(key) => {
            out.push(1);
            put_bytes(&mut out, key.as_bytes())?;
        }
        None => out.push(0),
    }
    put_len(&mut out, entry.headers.len())?;
    for (name, value) in entry.headers.iter() {
        put_bytes(&mut out, name.as_bytes())?;
        put_bytes(&mut out, value.as_bytes())?;
    }
    out.extend_from_slice(&entry.payload);
    Ok(out)
}

/// Decodes what [`encode`] wrote; malformed input is a backend error.
pub(super) fn decode(bytes: &[u8]) -> Result<Entry, Error> {
    let corrupt = || Error::Backend("corrupt record in the bus log".to_owned());
    let mut reader = Reader { rest: bytes };
    if reader.take(1).ok_or_else(corrupt)? != [VERSION] {
        return Err(corrupt());
    }
    let timestamp = reader
        .take(8)
        .and_then(|b| b.try_into().ok())
        .map(i64::from_le_bytes)
        .ok_or_else(corrupt)?;
    let key = match reader.take(1).ok_or_else(corrupt)? {
        [0] => None,
        [1] => Some(reader.string().ok_or_else(corrupt)?.into_boxed_str()),
        _ => return Err(corrupt()),
    };
    let count = reader.len().ok_or_else(corrupt)?;
    // Each header takes at least 8 bytes: bound the allocation by what is there.
    let mut headers = Vec::with_capacity(count.min(reader.rest.len() / 8));
    for _ in 0..count {
        let name = reader.string().ok_or_else(corrupt)?;
        let value = reader.string().ok_or_else(corrupt)?;
        headers.push((name, value));
    }
    Ok(Entry {
        key,
        payload: reader.rest.into(),
        headers: headers.into_boxed_slice(),
        timestamp,
    })
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), Error> {
    let len = u32::try_from(len)
        .map_err(|_| Error::Backend("record field longer than 4 GiB".to_owned()))?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Error> {
    put_len(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// A cursor over the encoded bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn len(&mut self) -> Option<usize> {
        let bytes: [u8; 4] = self.take(4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(bytes)).ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = self.len()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry() -> Entry {
        Entry {
            key: Some("k€y".into()),
            payload: b"{\"a\":1}".to_vec().into_boxed_slice(),
            headers: vec![
                ("trace".to_owned(), "x-1".to_owned()),
                (String::new(), String::new()),
            ]
            .into_boxed_slice(),
            timestamp: -42,
        }
    }

    #[test]
    fn round_trips() {
        let e = entry();
        assert_eq!(decode(&encode(&e).unwrap()).unwrap(), e);
        let bare = Entry {
            key: None,
            payload: Box::default(),
            headers: Box::default(),
            timestamp: i64::MAX,
        };
        assert_eq!(decode(&encode(&bare).unwrap()).unwrap(), bare);
    }

    #[test]
    fn rejects_every_truncation_and_garbage_without_panicking() {
        let bytes = encode(&entry()).unwrap();
        // Truncations inside the header part fail; the payload is the tail, so cutting it is valid.
        for cut in 0..bytes.len() - entry().payload.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut garbage = vec![VERSION];
        garbage.extend_from_slice(&[0; 8]);
        garbage.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert!(decode(&garbage).is_err());
        assert!(decode(&[2, 0, 0]).is_err());
        for seed in 0u8..=255 {
            let noise: Vec<u8> = (0..40u8)
                .map(|i| i.wrapping_mul(seed).wrapping_add(seed))
                .collect();
            let _ = decode(&noise);
        }
    }
}
