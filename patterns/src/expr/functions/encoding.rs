//! Base64 and URL encoding functions.

use crate::expr::error::{Error, Fail};
use crate::expr::eval::Ctx;
use crate::expr::value::Val;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn str_arg<'v>(args: &'v [Val<'_>]) -> Option<&'v str> {
    args.first().and_then(Val::as_str)
}

/// Standard base64 with padding.
pub fn to_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64 (padding and whitespace tolerated, invalid characters skipped).
pub fn from_base64(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let Some(v) = B64.iter().position(|&b| b == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// `$base64encode(str)`
pub fn base64encode<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    Ok(str_arg(args).map_or(Val::Undef, |s| Val::string(to_base64(s.as_bytes()))))
}

/// `$base64decode(str)`
pub fn base64decode<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    Ok(str_arg(args).map_or(Val::Undef, |s| {
        Val::string(String::from_utf8_lossy(&from_base64(s)).into_owned())
    }))
}

fn encode(s: &str, keep: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

const COMPONENT_SAFE: &str = "-_.!~*'()";
const URI_SAFE: &str = "-_.!~*'();/?:@&=+$,#";

fn decode(s: &str, reserved: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(hex, 16).ok()?;
            if v < 0x80 && reserved.as_bytes().contains(&v) {
                out.extend_from_slice(&bytes[i..i + 3]);
            } else {
                out.push(v);
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn malformed() -> Fail {
    Error::new("D3140", "Malformed URL passed to decode function")
}

/// `$encodeUrlComponent(str)`
pub fn encode_url_component<'a>(
    _: &Ctx<'a>,
    args: &[Val<'a>],
    _: &Val<'a>,
) -> Result<Val<'a>, Fail> {
    Ok(str_arg(args).map_or(Val::Undef, |s| Val::string(encode(s, COMPONENT_SAFE))))
}

/// `$encodeUrl(str)`
pub fn encode_url<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    Ok(str_arg(args).map_or(Val::Undef, |s| Val::string(encode(s, URI_SAFE))))
}

/// `$decodeUrlComponent(str)`
pub fn decode_url_component<'a>(
    _: &Ctx<'a>,
    args: &[Val<'a>],
    _: &Val<'a>,
) -> Result<Val<'a>, Fail> {
    match str_arg(args) {
        None => Ok(Val::Undef),
        Some(s) => decode(s, "").map(Val::string).ok_or_else(malformed),
    }
}

/// `$decodeUrl(str)`
pub fn decode_url<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    match str_arg(args) {
        None => Ok(Val::Undef),
        Some(s) => decode(s, ";/?:@&=+$,#")
            .map(Val::string)
            .ok_or_else(malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        assert_eq!(to_base64(b"hello:world"), "aGVsbG86d29ybGQ=");
        assert_eq!(from_base64("aGVsbG86d29ybGQ="), b"hello:world");
    }
}
