//! The JSONata query language on `jsonata-core`, with AWS's added functions.
