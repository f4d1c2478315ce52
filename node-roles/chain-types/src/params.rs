//! Positional JSON-RPC parameters whose trailing ones may be left out.
//!
//! Ethereum clients may omit a trailing optional parameter (`eth_getBalance` with an
//! address and no block tag means `latest`), but a Rust tuple such as
//! `(Address, Option<BlockId>)` refuses an array shorter than itself. [`positional`]
//! reads the array as given and, where that fails on its length, as if the missing
//! trailing parameters were `null`; a missing required parameter is still an error,
//! the one the array as given produced.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The most trailing parameters that may be left out of one call.
const MAX_OMITTED: usize = 3;

/// The raw parameters of a call (a JSON array, `null`, or `None` when absent) as `T`,
/// the trailing parameters that are left out taken as `null`. On failure, the error of
/// reading them as given.
pub fn positional<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, serde_json::Error> {
    let raw = raw.unwrap_or("null");
    let first = match serde_json::from_str(raw) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    let mut items = match serde_json::from_str(raw) {
        Ok(Value::Array(items)) => items,
        Ok(Value::Null) => Vec::new(),
        _ => return Err(first),
    };
    for _ in 0..MAX_OMITTED {
        items.push(Value::Null);
        if let Ok(t) = serde_json::from_value(Value::Array(items.clone())) {
            return Ok(t);
        }
    }
    Err(first)
}

#[cfg(test)]
mod tests {
    use alloy_eips::BlockId;
    use alloy_primitives::{Address, U256};
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    /// `positional` over the text of `params`.
    fn positional<T: DeserializeOwned>(params: Value) -> Result<T, serde_json::Error> {
        super::positional(Some(&params.to_string()))
    }

    const A: &str = "0x0000000000000000000000000000000000000001";

    #[test]
    fn a_left_out_block_is_none() {
        let (a, b): (Address, Option<BlockId>) = positional(json!([A])).unwrap();
        assert_eq!(a, A.parse::<Address>().unwrap());
        assert_eq!(b, None);
        let (_, _, b): (Address, U256, Option<BlockId>) = positional(json!([A, "0x2"])).unwrap();
        assert_eq!(b, None);
    }

    #[test]
    fn a_given_block_is_kept() {
        let (_, b): (Address, Option<BlockId>) = positional(json!([A, "latest"])).unwrap();
        assert_eq!(b, Some(BlockId::latest()));
        let (_, b): (Address, Option<BlockId>) = positional(json!([A, "0x5"])).unwrap();
        assert_eq!(b, Some(BlockId::number(5)));
    }

    #[test]
    fn a_missing_required_parameter_is_refused() {
        assert!(positional::<(Address, Option<BlockId>)>(json!([])).is_err());
        assert!(positional::<(Address, Option<BlockId>)>(Value::Null).is_err());
        assert!(super::positional::<(Address, Option<BlockId>)>(None).is_err());
        let e = positional::<(Address, U256, Option<BlockId>)>(json!([A])).unwrap_err();
        assert!(e.to_string().contains("length"), "{e}");
    }

    #[test]
    fn too_many_or_wrong_parameters_are_refused() {
        assert!(positional::<(Address, Option<BlockId>)>(json!([A, "latest", 1])).is_err());
        assert!(positional::<(Address, Option<BlockId>)>(json!(["nope"])).is_err());
        assert!(positional::<(Address, Option<BlockId>)>(json!([A, "sideways"])).is_err());
    }
}
