//! The partitioner every adapter uses, so that a key always lands in the same partition and a
//! host can choose ids that hash to a partition it owns.

/// The partition of `key` among `partitions`: murmur2 of the key's bytes, as Kafka's Java client
/// computes it (`(murmur2(key) & 0x7fffffff) % partitions`).
pub fn partition_for(key: &str, partitions: u32) -> u32 {
    if partitions == 0 {
        return 0;
    }
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions
}

/// Kafka's murmur2 (seed 0x9747b28c).
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len() as u32;
    let mut h: u32 = 0x9747_b28c ^ len;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kafka_java_client_murmur2() {
        // Values from Kafka's own partitioner tests (Utils.murmur2).
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        for n in 1..16 {
            let p = partition_for("thred-42", n);
            assert!(p < n);
            assert_eq!(p, partition_for("thred-42", n));
        }
        assert_eq!(partition_for("x", 0), 0);
    }
}
