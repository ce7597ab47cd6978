//! The `States.*` intrinsic functions of the JSONPath query language.
