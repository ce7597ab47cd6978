//! How event data becomes a stage's input and its output becomes bytes: JSON through `serde`
//! for any type that implements it, or [`Bytes`] for data passed through untouched.

use std::ops::{Deref, DerefMut};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// Bytes taken or returned as they are, not as JSON: the input type of a stage that reads its
/// data itself, and the output type of one that has already encoded its answer.
///
/// (`Vec<u8>` would not do: it is a `serde` type, so it would be read and written as a JSON
/// array of numbers.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(bytes: Bytes) -> Self {
        bytes.0
    }
}

impl Deref for Bytes {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A stage input read from the event's data.
///
/// Implemented for every `serde` type (read as JSON: data that is not JSON fails with
/// `Input.MalformedJson`, JSON of another shape with `Input.Invalid`) and for [`Bytes`].
/// Implement it for a type of your own that is not `Deserialize` to read another encoding.
pub trait FromData: Sized {
    /// Decode `data`, or say why it cannot be (the event then fails with that error).
    fn from_data(data: Vec<u8>) -> Result<Self, Error>;
}

impl<T: DeserializeOwned> FromData for T {
    fn from_data(data: Vec<u8>) -> Result<Self, Error> {
        serde_json::from_slice(&data).map_err(|e| Error::input(&e))
    }
}

impl FromData for Bytes {
    fn from_data(data: Vec<u8>) -> Result<Self, Error> {
        Ok(Self(data))
    }
}

/// A stage output turned into the bytes the host receives.
///
/// Implemented for every `serde` type (written as compact JSON; a value that cannot be fails
/// with `Output.Unserializable`) and for [`Bytes`]. `()` answers JSON `null`.
pub trait IntoData {
    /// Encode the output.
    fn into_data(self) -> Result<Vec<u8>, Error>;
}

impl<T: Serialize> IntoData for T {
    fn into_data(self) -> Result<Vec<u8>, Error> {
        to_json("the output", &self)
    }
}

impl IntoData for Bytes {
    fn into_data(self) -> Result<Vec<u8>, Error> {
        Ok(self.0)
    }
}

/// `value` as compact JSON, or `Output.Unserializable` naming `what`.
pub(crate) fn to_json<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::unserializable(what, &e))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Order {
        order_id: String,
        qty: u32,
    }

    #[test]
    fn typed_input_reads_json() {
        let order = Order::from_data(br#"{"orderId":"o-1","qty":2}"#.to_vec()).unwrap();
        assert_eq!(
            order,
            Order {
                order_id: "o-1".into(),
                qty: 2
            }
        );
    }

    #[test]
    fn data_that_is_not_json_is_malformed() {
        for data in [&b"not json"[..], b"{\"orderId\":", b"", b"\xff"] {
            let e = Order::from_data(data.to_vec()).unwrap_err();
            assert_eq!(e.name(), "Input.MalformedJson", "{data:?}: {e}");
            assert!(!e.is_retryable());
            assert!(e.cause().starts_with("event data is not JSON: "), "{e}");
        }
    }

    #[test]
    fn json_of_another_shape_is_invalid() {
        for data in [
            &br#"{"orderId":"o-1"}"#[..],
            br#"{"orderId":1,"qty":2}"#,
            b"[]",
            b"3",
        ] {
            let e = Order::from_data(data.to_vec()).unwrap_err();
            assert_eq!(e.name(), "Input.Invalid", "{data:?}: {e}");
            assert!(!e.is_retryable());
        }
    }

    #[test]
    fn bytes_pass_through_untouched() {
        let data = b"\x00 not json \xff".to_vec();
        let input = Bytes::from_data(data.clone()).unwrap();
        assert_eq!(input.as_ref(), &data[..]);
        assert_eq!(input.into_data().unwrap(), data);
    }

    #[test]
    fn vec_u8_is_json_not_bytes() {
        assert_eq!(vec![1u8, 2].into_data().unwrap(), b"[1,2]");
    }

    #[test]
    fn typed_output_is_compact_json() {
        let out = Order {
            order_id: "o-1".into(),
            qty: 2,
        };
        assert_eq!(out.into_data().unwrap(), br#"{"orderId":"o-1","qty":2}"#);
        assert_eq!(().into_data().unwrap(), b"null");
        assert_eq!(
            serde_json::json!({"a": [true, null]}).into_data().unwrap(),
            br#"{"a":[true,null]}"#
        );
    }

    #[test]
    fn an_unserializable_output_is_a_named_error() {
        let mut map = BTreeMap::new();
        map.insert(vec![1u8], 1);
        let e = map.into_data().unwrap_err();
        assert_eq!(e.name(), "Output.Unserializable");
        assert!(!e.is_retryable());
        assert!(
            e.cause().starts_with("the output does not serialize"),
            "{e}"
        );
    }
}
