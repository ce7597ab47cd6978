use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn books() -> Value {
    json!({"store": {"book": [
        {"category": "reference", "author": "Nigel Rees", "title": "Sayings", "price": 8.95},
        {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword", "price": 12.99, "tags": ["a", "b"]},
        {"category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "isbn": "0-553", "price": 8.99},
        {"category": "fiction", "author": "J. R. R. Tolkien", "title": "LOTR", "isbn": "0-395", "price": 22.99, "tags": ["b"]}
    ], "limit": 10}, "expensive": 10})
}

fn titles(filter: &str) -> Value {
    let path = format!("$.store.book[?({filter})].title");
    Path::parse(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .select(&books())
        .unwrap()
}

#[test]
fn comparisons() {
    assert_eq!(titles("@.price < 10"), json!(["Sayings", "Moby Dick"]));
    assert_eq!(titles("@.price<10"), json!(["Sayings", "Moby Dick"]));
    assert_eq!(titles("@.price <= 8.95"), json!(["Sayings"]));
    assert_eq!(titles("@.price > 20"), json!(["LOTR"]));
    assert_eq!(titles("@.price >= 12.99"), json!(["Sword", "LOTR"]));
    assert_eq!(titles("@.category == 'reference'"), json!(["Sayings"]));
    assert_eq!(titles("@.category == \"reference\""), json!(["Sayings"]));
    assert_eq!(titles("@.category != 'fiction'"), json!(["Sayings"]));
    assert_eq!(titles("'reference' == @.category"), json!(["Sayings"]));
    // `$` inside a filter is the document.
    assert_eq!(titles("@.price > $.expensive"), json!(["Sword", "LOTR"]));
    assert_eq!(titles("@.price > $.store.limit"), json!(["Sword", "LOTR"]));
    // Strings only compare with strings, numbers with numbers.
    assert_eq!(titles("@.title < 'N'"), json!(["Moby Dick", "LOTR"]));
    assert_eq!(titles("@.price < '10'"), json!([]));
}

#[test]
fn existence_and_missing_values() {
    assert_eq!(titles("@.isbn"), json!(["Moby Dick", "LOTR"]));
    assert_eq!(titles("!@.isbn"), json!(["Sayings", "Sword"]));
    // A missing value equals nothing, so != holds for it (Jayway).
    assert_eq!(
        titles("@.isbn != '0-553'"),
        json!(["Sayings", "Sword", "LOTR"])
    );
    assert_eq!(titles("@.isbn == '0-553'"), json!(["Moby Dick"]));
    assert_eq!(titles("@.nothing < 3"), json!([]));
    let doc = json!({"a": [{"x": null}, {"y": 1}]});
    assert_eq!(
        Path::parse("$.a[?(@.x)]").unwrap().select(&doc).unwrap(),
        json!([{"x": null}])
    );
    assert_eq!(
        Path::parse("$.a[?(@.x == null)]")
            .unwrap()
            .select(&doc)
            .unwrap(),
        json!([{"x": null}])
    );
}

#[test]
fn logic() {
    assert_eq!(
        titles("@.price < 10 && @.category == 'fiction'"),
        json!(["Moby Dick"])
    );
    assert_eq!(
        titles("@.price < 9 || @.price > 20"),
        json!(["Sayings", "Moby Dick", "LOTR"])
    );
    assert_eq!(titles("!(@.price < 10)"), json!(["Sword", "LOTR"]));
    assert_eq!(
        titles("(@.price < 9 || @.price > 20) && @.isbn"),
        json!(["Moby Dick", "LOTR"])
    );
    // && binds tighter than ||.
    assert_eq!(
        titles("@.price > 20 || @.price < 9 && @.category == 'reference'"),
        json!(["Sayings", "LOTR"])
    );
}

#[test]
fn regex_in_nin_and_friends() {
    assert_eq!(titles("@.author =~ /.*REES/i"), json!(["Sayings"]));
    // Whole-string match, as Java's Matcher.matches().
    assert_eq!(titles("@.author =~ /Rees/"), json!([]));
    assert_eq!(titles("@.author =~ /.*Rees/"), json!(["Sayings"]));
    assert_eq!(
        titles("@.category in ['reference', 'poetry']"),
        json!(["Sayings"])
    );
    assert_eq!(titles("@.category in [\"reference\"]"), json!(["Sayings"]));
    assert_eq!(titles("@.category nin ['fiction']"), json!(["Sayings"]));
    assert_eq!(
        titles("@.price in [8.95, 22.99]"),
        json!(["Sayings", "LOTR"])
    );
    assert_eq!(titles("@.tags contains 'a'"), json!(["Sword"]));
    assert_eq!(titles("@.author contains 'Mel'"), json!(["Moby Dick"]));
    assert_eq!(titles("@.tags size 2"), json!(["Sword"]));
    assert_eq!(titles("@.title size 4"), json!(["LOTR"]));
    assert_eq!(titles("@.tags empty false"), json!(["Sword", "LOTR"]));
    assert_eq!(
        titles("@.tags subsetof ['a', 'b', 'c']"),
        json!(["Sword", "LOTR"])
    );
    assert_eq!(titles("@.tags anyof ['a']"), json!(["Sword"]));
    assert_eq!(titles("@.tags noneof ['a']"), json!(["LOTR"]));
    assert_eq!(titles("@.price === 8.95"), json!(["Sayings"]));
    assert_eq!(
        titles("@.price !== 8.95"),
        json!(["Sword", "Moby Dick", "LOTR"])
    );
}

#[test]
fn functions_in_filters() {
    assert_eq!(titles("@.tags.length() > 1"), json!(["Sword"]));
    assert_eq!(titles("@.tags.length() == 1"), json!(["LOTR"]));
    let doc = json!({"arrs": [[1], [1, 2, 3], []]});
    assert_eq!(
        Path::parse("$.arrs[?(@.length() >= 2)]")
            .unwrap()
            .select(&doc)
            .unwrap(),
        json!([[1, 2, 3]])
    );
    assert_eq!(
        Path::parse("$.arrs[?(@.length() == $.arrs.length())]")
            .unwrap()
            .select(&doc)
            .unwrap(),
        json!([[1, 2, 3]])
    );
}

#[test]
fn filters_on_objects_and_scans() {
    // A filter on an object tests the object itself.
    let doc = json!({"o": {"a": 1}});
    assert_eq!(
        Path::parse("$.o[?(@.a == 1)]")
            .unwrap()
            .select(&doc)
            .unwrap(),
        json!([{"a": 1}])
    );
    assert_eq!(
        Path::parse("$.o[?(@.a == 2)]")
            .unwrap()
            .select(&doc)
            .unwrap(),
        json!([])
    );
    let doc = books();
    let cheap = Path::parse("$..book[?(@.price < 9)].title")
        .unwrap()
        .select(&doc)
        .unwrap();
    assert_eq!(cheap, json!(["Sayings", "Moby Dick"]));
    let with_isbn = Path::parse("$..[?(@.isbn)].title")
        .unwrap()
        .select(&doc)
        .unwrap();
    assert_eq!(with_isbn, json!(["Moby Dick", "LOTR"]));
    // Nested filters.
    let doc = json!({"a": [{"b": [{"c": 1}]}, {"b": [{"c": 2}]}]});
    assert_eq!(
        Path::parse("$.a[?(@.b[?(@.c == 2)])]")
            .unwrap()
            .select(&doc)
            .unwrap(),
        json!([{"b": [{"c": 2}]}])
    );
}

#[test]
fn filter_syntax_errors() {
    for bad in [
        "$.a[?(@.x <)]",
        "$.a[?(@.x < 1]",
        "$.a[?@.x]",
        "$.a[?(@.x == 'a)]",
        "$.a[?(@.x =~ /a)]",
        "$.a[?(@.x =~ /(/)]",
        "$.a[?(@.x =~ /a/q)]",
        "$.a[?(@.x && )]",
        "$.a[?(1)]",
        "$.a[?(@.x in [1,)]",
        "$.a[?()]",
        "$.a[?(@.x)",
    ] {
        assert!(Path::parse(bad).is_err(), "{bad}");
    }
    let deep = format!("$.a[?({}@.x{})]", "(".repeat(200), ")".repeat(200));
    assert!(Path::parse(&deep).is_err());
    let deep = format!("$.a[?(@.x in {}1{})]", "[".repeat(200), "]".repeat(200));
    assert!(Path::parse(&deep).is_err());
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9..1e9_f64).prop_map(Value::from),
        "[a-c0-9]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-c]{1,2}", inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Path-looking strings: built from the characters paths are made of, so the parser's
/// deeper branches get exercised, not just its first error.
fn arb_path_text() -> impl Strategy<Value = String> {
    let atoms = prop_oneof![
        Just(".a"),
        Just(".b"),
        Just("['a']"),
        Just("[\"b\"]"),
        Just("[0]"),
        Just("[-1]"),
        Just("[*]"),
        Just(".*"),
        Just(".."),
        Just("[1:]"),
        Just("[:2]"),
        Just("[0,1]"),
        Just("['a','b']"),
        Just("[?(@.a)]"),
        Just("[?(@.a < 2)]"),
        Just("[?(@ == 'x' || !@.b)]"),
        Just("[?(@.a =~ /a.*/i)]"),
        Just("[?(@.a in [1,'a'])]"),
        Just(".length()"),
        Just(".sum()"),
        Just("["),
        Just("]"),
        Just("("),
        Just(")"),
        Just("'"),
        Just("?"),
        Just("@"),
        Just("$"),
        Just(" "),
        Just("\\"),
        Just(":"),
        Just(","),
        Just("-"),
    ];
    (
        prop_oneof![Just("$"), Just("$$"), Just("$v")],
        prop::collection::vec(atoms, 0..8),
    )
        .prop_map(|(root, parts)| format!("{root}{}", parts.concat()))
}

proptest! {
    #[test]
    fn parse_never_panics_on_any_string(s in ".{0,40}") {
        let _ = Path::parse(&s);
    }

    #[test]
    fn select_and_write_never_panic(text in arb_path_text(), doc in arb_json(), value in arb_json()) {
        if let Ok(path) = Path::parse(&text) {
            let got = path.select(&doc);
            if let Ok(v) = &got {
                // An indefinite path always answers with a list.
                if !path.is_definite() {
                    prop_assert!(v.is_array());
                }
            } else {
                prop_assert!(path.is_definite(), "only definite paths fail: {}", text);
            }
            let mut target = doc.clone();
            match path.write(&mut target, value.clone()) {
                Ok(()) => {
                    prop_assert!(path.is_reference());
                    // What was written reads back (through the same path).
                    prop_assert_eq!(path.select(&target).ok(), Some(value));
                }
                Err(_) => prop_assert_eq!(&target, &doc),
            }
            let _ = path.normalized();
        }
    }
}
