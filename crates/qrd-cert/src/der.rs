//! Just enough DER to read the public half out of private keys (PKCS #1, SEC 1, PKCS #8): x509-parser reads
//! certificates, not private keys.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerError;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const CONTEXT_0: u8 = 0xa0;
const CONTEXT_1: u8 = 0xa1;

/// One tag-length-value: (tag, content, rest).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError)?;
    let (&first, rest) = rest.split_first().ok_or(DerError)?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(DerError);
        }
        (rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize), &rest[n..])
    };
    if rest.len() < len {
        return Err(DerError);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), DerError> {
    let (tag, content, rest) = tlv(input)?;
    if tag != want {
        return Err(DerError);
    }
    Ok((content, rest))
}

/// An INTEGER's magnitude without DER's leading zero byte, for comparing numbers from different encoders.
pub(crate) fn unsigned(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

/// `RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, … }` → (modulus, exponent).
pub(crate) fn rsa_public(pkcs1: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DerError> {
    let (seq, _) = expect(pkcs1, SEQUENCE)?;
    let (_version, rest) = expect(seq, INTEGER)?;
    let (n, rest) = expect(rest, INTEGER)?;
    let (e, _) = expect(rest, INTEGER)?;
    Ok((unsigned(n), unsigned(e)))
}

pub(crate) struct Sec1<'a> {
    pub private: &'a [u8],
    pub curve: Option<String>,
    /// The uncompressed public point, when the key carries it.
    pub public: Option<&'a [u8]>,
}

/// `ECPrivateKey ::= SEQUENCE { version, privateKey OCTET STRING, [0] parameters OPTIONAL, [1] publicKey
/// OPTIONAL }`.
pub(crate) fn sec1(der: &[u8]) -> Result<Sec1<'_>, DerError> {
    let (seq, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(seq, INTEGER)?;
    let (private, mut rest) = expect(rest, OCTET_STRING)?;
    let (mut curve, mut public) = (None, None);
    while !rest.is_empty() {
        let (tag, content, next) = tlv(rest)?;
        match tag {
            CONTEXT_0 => curve = Some(oid_string(expect(content, OID)?.0)?),
            CONTEXT_1 => {
                let (bits, _) = expect(content, BIT_STRING)?;
                // The first byte counts unused bits (0 for a point).
                public = Some(bits.get(1..).ok_or(DerError)?);
            }
            _ => {}
        }
        rest = next;
    }
    Ok(Sec1 { private, curve, public })
}

pub(crate) struct Pkcs8<'a> {
    pub algorithm: String,
    /// The curve of an EC key (the algorithm's parameters).
    pub curve: Option<String>,
    /// The inner key: PKCS #1 for RSA, SEC 1 for EC, the seed for Ed25519.
    pub key: &'a [u8],
}

/// `PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, privateKey OCTET STRING, … }`.
pub(crate) fn pkcs8(der: &[u8]) -> Result<Pkcs8<'_>, DerError> {
    let (seq, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(seq, INTEGER)?;
    let (alg, rest) = expect(rest, SEQUENCE)?;
    let (oid, params) = expect(alg, OID)?;
    let curve = match tlv(params) {
        Ok((OID, c, _)) => Some(oid_string(c)?),
        _ => None,
    };
    let (key, _) = expect(rest, OCTET_STRING)?;
    Ok(Pkcs8 { algorithm: oid_string(oid)?, curve, key })
}

/// Dotted form of an OID's content bytes.
fn oid_string(bytes: &[u8]) -> Result<String, DerError> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut cur: u64 = 0;
    for &b in bytes {
        cur = cur.checked_mul(128).ok_or(DerError)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (cur / 40).min(2);
                arcs.push(first);
                arcs.push(cur - first * 40);
            } else {
                arcs.push(cur);
            }
            cur = 0;
        }
    }
    if arcs.is_empty() {
        return Err(DerError);
    }
    Ok(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_read_back() {
        // 1.2.840.113549.1.1.1 (rsaEncryption)
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]).unwrap(),
            "1.2.840.113549.1.1.1"
        );
        assert_eq!(oid_string(&[0x2b, 0x65, 0x70]).unwrap(), "1.3.101.112");
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        assert_eq!(tlv(&[0x30, 0x82, 0x01]).err(), Some(DerError));
        assert_eq!(tlv(&[0x30, 0x05, 0x01]).err(), Some(DerError));
        assert!(rsa_public(&[]).is_err());
        assert!(sec1(&[0x30, 0x00]).is_err());
    }
}
