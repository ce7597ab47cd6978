//! Reading one JSON object of a definition: typed field getters that record a problem (with
//! its pointer) instead of failing, so one pass reports everything wrong.

use serde_json::{Map, Value};

use super::Invalid;
use super::parse::schema;
use super::payload::token;

/// An object of the definition at `pointer`.
pub(crate) struct Obj<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) pointer: String,
}

impl<'a> Obj<'a> {
    /// `v` as an object, or a problem.
    pub(crate) fn new(
        v: &'a Value,
        pointer: &str,
        what: &str,
        errs: &mut Vec<Invalid>,
    ) -> Option<Self> {
        match v.as_object() {
            Some(map) => Some(Self {
                map,
                pointer: pointer.to_owned(),
            }),
            None => {
                errs.push(schema(format!("{what} must be an object"), pointer));
                None
            }
        }
    }

    pub(crate) fn at(&self, field: &str) -> String {
        format!("{}/{}", self.pointer, token(field))
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    pub(crate) fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field)
    }

    /// Fields outside `allowed` are problems.
    pub(crate) fn only(&self, allowed: &[&str], errs: &mut Vec<Invalid>) {
        for k in self.map.keys() {
            if !allowed.contains(&k.as_str()) {
                errs.push(schema(
                    format!("The field \"{k}\" is not supported by Step Functions"),
                    &self.at(k),
                ));
            }
        }
    }

    /// Fields in `forbidden` present are problems of the query language.
    pub(crate) fn not_in(&self, forbidden: &[&str], lang: &str, errs: &mut Vec<Invalid>) {
        for k in forbidden {
            if self.has(k) {
                errs.push(schema(
                    format!("The field \"{k}\" is not supported with the {lang} query language"),
                    &self.at(k),
                ));
            }
        }
    }

    pub(crate) fn required(&self, field: &str, errs: &mut Vec<Invalid>) -> Option<&'a Value> {
        let v = self.get(field);
        if v.is_none() {
            // The root object's pointer is `/`, as AWS writes it.
            let at = if self.pointer.is_empty() {
                "/"
            } else {
                &self.pointer
            };
            errs.push(schema(format!("These fields are required: [{field}]"), at));
        }
        v
    }

    pub(crate) fn str(&self, field: &str, errs: &mut Vec<Invalid>) -> Option<&'a str> {
        let v = self.get(field)?;
        match v.as_str() {
            Some(s) => Some(s),
            None => {
                errs.push(schema(
                    format!("The value for the field '{field}' must be a STRING"),
                    &self.at(field),
                ));
                None
            }
        }
    }

    pub(crate) fn bool(&self, field: &str, errs: &mut Vec<Invalid>) -> Option<bool> {
        let v = self.get(field)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                errs.push(schema(
                    format!("The value for the field '{field}' must be a BOOLEAN"),
                    &self.at(field),
                ));
                None
            }
        }
    }

    /// A non-negative integer (AWS rejects floats and negatives here).
    pub(crate) fn uint(&self, field: &str, errs: &mut Vec<Invalid>) -> Option<u64> {
        let v = self.get(field)?;
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                errs.push(schema(
                    format!("The value for the field '{field}' must be a non-negative INTEGER"),
                    &self.at(field),
                ));
                None
            }
        }
    }

    pub(crate) fn number(&self, field: &str, errs: &mut Vec<Invalid>) -> Option<f64> {
        let v = self.get(field)?;
        match v.as_f64() {
            Some(n) => Some(n),
            None => {
                errs.push(schema(
                    format!("The value for the field '{field}' must be a NUMBER"),
                    &self.at(field),
                ));
                None
            }
        }
    }

    pub(crate) fn array(&self, field: &str, errs: &mut Vec<Invalid>) -> Option<&'a Vec<Value>> {
        let v = self.get(field)?;
        match v.as_array() {
            Some(a) => Some(a),
            None => {
                errs.push(schema(
                    format!("The value for the field '{field}' must be an ARRAY"),
                    &self.at(field),
                ));
                None
            }
        }
    }

    pub(crate) fn strings(&self, field: &str, errs: &mut Vec<Invalid>) -> Option<Vec<String>> {
        let a = self.array(field, errs)?;
        let mut out = Vec::with_capacity(a.len());
        for (i, v) in a.iter().enumerate() {
            match v.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => errs.push(schema(
                    format!("The values of the field '{field}' must be STRINGs"),
                    &format!("{}/{i}", self.at(field)),
                )),
            }
        }
        Some(out)
    }
}
