//! `$mul` for servers that lack it (briskdb): the products computed from a document's current
//! values, as the embedded engine computes them.

use mongodb::bson::{Bson, Document};

use crate::documents::Error;

/// The value at a dotted path of a stored document (numeric segments index arrays).
fn value_at<'d>(doc: &'d Document, path: &str) -> Option<&'d Bson> {
    let mut segments = path.split('.');
    let mut current = doc.get(segments.next()?)?;
    for segment in segments {
        current = match current {
            Bson::Document(d) => d.get(segment)?,
            Bson::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The field at `path` of `doc` times `factor`, as `$mul` computes it: a missing field gives 0,
/// integers stay exact (overflow is invalid), anything else numeric is a double.
pub(super) fn product(doc: &Document, path: &str, factor: &Bson) -> Result<Bson, Error> {
    let int = |b: &Bson| match b {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        _ => None,
    };
    let float = |b: &Bson| match b {
        Bson::Double(f) => Some(*f),
        other => int(other).map(|i| i as f64),
    };
    let invalid = |what: String| Error::Invalid(format!("$mul on {what} field {path}"));
    let current = value_at(doc, path);
    let Some(current) = current else {
        return Ok(match factor {
            Bson::Double(_) => Bson::Double(0.0),
            _ => Bson::Int64(0),
        });
    };
    if let (Some(a), Some(b)) = (int(current), int(factor)) {
        return a
            .checked_mul(b)
            .map(Bson::Int64)
            .ok_or_else(|| invalid("an overflowing".into()));
    }
    match (float(current), float(factor)) {
        (Some(a), Some(b)) if (a * b).is_finite() => Ok(Bson::Double(a * b)),
        (Some(_), Some(_)) => Err(invalid("a non-finite".into())),
        _ => Err(invalid(format!(
            "a non-numeric ({:?})",
            current.element_type()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn emulated_mul_follows_the_embedded_rules() {
        let d = doc! {"n": 5_i64, "i": 2_i32, "f": 1.5, "s": "x", "o": {"l": [1_i64, 3_i64]}};
        let mul = |path: &str, factor: Bson| product(&d, path, &factor).ok();
        assert_eq!(mul("n", Bson::Int64(3)), Some(Bson::Int64(15)));
        assert_eq!(mul("i", Bson::Int32(2)), Some(Bson::Int64(4)));
        assert_eq!(mul("f", Bson::Int64(2)), Some(Bson::Double(3.0)));
        assert_eq!(mul("o.l.1", Bson::Int64(2)), Some(Bson::Int64(6)));
        assert_eq!(mul("missing", Bson::Int64(4)), Some(Bson::Int64(0)));
        assert_eq!(mul("missing", Bson::Double(4.0)), Some(Bson::Double(0.0)));
        assert_eq!(mul("s", Bson::Int64(2)), None);
        assert_eq!(mul("n", Bson::Int64(i64::MAX)), None);
    }
}
