//! Jayway-compatible JSONPath (AWS's dialect): parsing, selection, and write-back.
