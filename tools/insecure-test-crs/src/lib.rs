//! INSECURE, TEST-ONLY BN254 structured reference string (CRS) for barretenberg's `bb`.
//!
//! The secret `tau` of this CRS is the public constant [`PUBLIC_TAU`], so anyone can
//! forge proofs against it. It exists only so bb-remote's tests can run the real,
//! unmodified `bb` prover offline. Never use its output for anything real.
//!
//! What this module is for: computing the CRS points and encoding them exactly the way
//! bb 5.0.0 reads them (docs/testbed-crs.md):
//! - `bn254_g1.dat`: point i is `[tau^i]G1`, 64 bytes `x || y`, each a 32-byte
//!   big-endian canonical (non-Montgomery) Fq element; point 0 is the generator (1, 2).
//! - `bn254_g2.dat`: `[tau]G2`, 128 bytes `x.c0 || x.c1 || y.c0 || y.c1`, same encoding.
//!
//! Not for: writing files (see `main.rs`) or patching bb (see `bin/patch-bb-g2.rs`).

pub mod patch;

use ark_bn254::{Fq, Fq2, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::scalar_mul::BatchMulPreprocessing;
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
use ark_ff::{BigInt, BigInteger, Field, PrimeField};
use std::str::FromStr;

/// The PUBLIC secret of the test CRS. Publishing it is what makes this CRS insecure.
/// A fixed value, so every test bed builds the same CRS.
pub const PUBLIC_TAU: &str = "8405316208735183710462089212563190387";

/// Bytes per encoded G1 point in `bn254_g1.dat`.
pub const G1_POINT_BYTES: usize = 64;
/// Bytes of the encoded G2 point in `bn254_g2.dat`.
pub const G2_POINT_BYTES: usize = 128;

/// The Aztec Ignition ceremony's `[x]_2`, as bb serialises it. bb 5.0.0's verifier
/// has these bytes compiled in (and their SHA-256); `patch-bb-g2` looks for them.
pub const AZTEC_IGNITION_G2: [u8; G2_POINT_BYTES] = hex_literal(concat!(
    "0118c4d5b837bcc2bc89b5b398b5974e9f5944073b32078b7e231fec938883b0",
    "260e01b251f6f1c7e7ff4e580791dee8ea51d87a358e038b4efe30fac09383c1",
    "22febda3c0c0632a56475b4214e5615e11e6dd3f96e6cea2854a87d4dacc5e55",
    "04fc6369f7110fe3d25156c1bb9a72859cf2a04641f99ba4ee413c80da6a5fe4",
));

/// The public tau as a scalar.
pub fn public_tau() -> Fr {
    Fr::from_str(PUBLIC_TAU).expect("PUBLIC_TAU is a valid decimal scalar")
}

/// Encodes `[tau^0]G1 .. [tau^(n-1)]G1` as `bn254_g1.dat` bytes, using up to
/// `threads` threads (the fixed-base table is shared, the scalars are split).
pub fn g1_powers_of_tau(tau: Fr, n: usize, threads: usize) -> Vec<u8> {
    let mut powers = Vec::with_capacity(n);
    let mut power = Fr::ONE;
    for _ in 0..n {
        powers.push(power);
        power *= tau;
    }
    let table = BatchMulPreprocessing::new(G1Projective::generator(), n.max(1));
    let mut out = vec![0u8; n * G1_POINT_BYTES];
    let chunk = n.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        for (scalars, bytes) in powers
            .chunks(chunk)
            .zip(out.chunks_mut(chunk * G1_POINT_BYTES))
        {
            let table = &table;
            scope.spawn(move || {
                let points = table.batch_mul(scalars);
                for (point, slot) in points.iter().zip(bytes.chunks_mut(G1_POINT_BYTES)) {
                    slot.copy_from_slice(&encode_g1(point));
                }
            });
        }
    });
    out
}

/// Encodes `[tau]G2` as `bn254_g2.dat` bytes.
pub fn g2_tau(tau: Fr) -> [u8; G2_POINT_BYTES] {
    encode_g2(&(G2Projective::generator() * tau).into_affine())
}

/// `x || y`, 32-byte big-endian canonical each.
pub fn encode_g1(point: &G1Affine) -> [u8; G1_POINT_BYTES] {
    let (x, y) = point.xy().expect("no point of the CRS is at infinity");
    let mut out = [0u8; G1_POINT_BYTES];
    out[..32].copy_from_slice(&fq_to_be(&x));
    out[32..].copy_from_slice(&fq_to_be(&y));
    out
}

/// `x.c0 || x.c1 || y.c0 || y.c1`, 32-byte big-endian canonical each.
pub fn encode_g2(point: &G2Affine) -> [u8; G2_POINT_BYTES] {
    let (x, y) = point.xy().expect("[tau]G2 is not at infinity");
    let mut out = [0u8; G2_POINT_BYTES];
    for (slot, coordinate) in out.chunks_mut(32).zip([x.c0, x.c1, y.c0, y.c1]) {
        slot.copy_from_slice(&fq_to_be(&coordinate));
    }
    out
}

/// Decodes a `bn254_g1.dat` point; `None` unless canonical, on the curve and in G1.
pub fn decode_g1(bytes: &[u8; G1_POINT_BYTES]) -> Option<G1Affine> {
    let point = G1Affine::new_unchecked(fq_from_be(&bytes[..32])?, fq_from_be(&bytes[32..])?);
    (point.is_on_curve() && point.is_in_correct_subgroup_assuming_on_curve()).then_some(point)
}

/// Decodes a `bn254_g2.dat` point; `None` unless canonical, on the curve and in G2.
pub fn decode_g2(bytes: &[u8; G2_POINT_BYTES]) -> Option<G2Affine> {
    let fq = |i: usize| fq_from_be(&bytes[32 * i..32 * (i + 1)]);
    let point = G2Affine::new_unchecked(Fq2::new(fq(0)?, fq(1)?), Fq2::new(fq(2)?, fq(3)?));
    (point.is_on_curve() && point.is_in_correct_subgroup_assuming_on_curve()).then_some(point)
}

fn fq_to_be(value: &Fq) -> [u8; 32] {
    let be = value.into_bigint().to_bytes_be();
    let mut out = [0u8; 32];
    out[32 - be.len()..].copy_from_slice(&be);
    out
}

/// `None` for values >= the field modulus (not canonical).
fn fq_from_be(bytes: &[u8]) -> Option<Fq> {
    let mut limbs = [0u64; 4];
    for (i, limb) in limbs.iter_mut().enumerate() {
        let start = 32 - 8 * (i + 1);
        *limb = u64::from_be_bytes(bytes[start..start + 8].try_into().ok()?);
    }
    Fq::from_bigint(BigInt::new(limbs))
}

/// Compile-time hex decoding, so the Ignition constant stays readable as hex.
const fn hex_literal<const N: usize>(hex: &str) -> [u8; N] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let hex = hex.as_bytes();
    assert!(hex.len() == 2 * N, "hex literal has the wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::Bn254;
    use ark_ec::pairing::Pairing;

    fn g1_at(data: &[u8], i: usize) -> G1Affine {
        let bytes = data[i * G1_POINT_BYTES..(i + 1) * G1_POINT_BYTES]
            .try_into()
            .unwrap();
        decode_g1(bytes).expect("valid G1 point")
    }

    #[test]
    fn first_point_is_the_generator_one_two() {
        let data = g1_powers_of_tau(public_tau(), 4, 2);
        let mut expected = [0u8; 64];
        expected[31] = 1;
        expected[63] = 2;
        assert_eq!(data[..64], expected);
    }

    #[test]
    fn consecutive_points_and_g2_satisfy_the_kzg_pairing_relation() {
        // e([tau^(i+1)]G1, G2) == e([tau^i]G1, [tau]G2) for every i: the relation the
        // verifier relies on, checked through the encoded bytes.
        let tau = public_tau();
        let data = g1_powers_of_tau(tau, 5, 3);
        let tau_g2 = decode_g2(&g2_tau(tau)).expect("valid G2 point");
        for i in 0..4 {
            let lhs = Bn254::pairing(g1_at(&data, i + 1), G2Affine::generator());
            let rhs = Bn254::pairing(g1_at(&data, i), tau_g2);
            assert_eq!(lhs, rhs, "pairing relation broken at point {i}");
        }
    }

    #[test]
    fn threading_does_not_change_the_output() {
        let tau = public_tau();
        assert_eq!(g1_powers_of_tau(tau, 37, 1), g1_powers_of_tau(tau, 37, 4));
    }

    #[test]
    fn ignition_g2_is_a_valid_point_other_than_ours() {
        assert!(decode_g2(&AZTEC_IGNITION_G2).is_some());
        assert_ne!(g2_tau(public_tau()), AZTEC_IGNITION_G2);
    }

    #[test]
    fn non_canonical_coordinates_are_rejected() {
        let mut bytes = encode_g1(&G1Affine::generator());
        bytes[..32].fill(0xff);
        assert!(decode_g1(&bytes).is_none());
    }
}
