//! The array, encoding, hashing, math, string and UUID functions.

use serde_json::{Value, json};

use super::*;
use crate::intrinsics::functions;
use crate::intrinsics::text::java_double;

// ---- arrays -----------------------------------------------------------------------------

#[test]
fn array_collects_its_arguments() {
    assert_eq!(ok("States.Array()", json!({})), json!([]));
    assert_eq!(
        ok("States.Array($.Id)", json!({"Id": 123456})),
        json!([123456])
    );
    assert_eq!(
        ok("States.Array('a', 'b', 'c')", json!({})),
        json!(["a", "b", "c"])
    );
}

#[test]
fn array_partition() {
    let input = json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]});
    assert_eq!(
        ok("States.ArrayPartition($.a, 4)", input.clone()),
        json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
    );
    // Rounded to the nearest integer.
    assert_eq!(
        ok("States.ArrayPartition($.a, 4.5)", input.clone()),
        json!([[1, 2, 3, 4, 5], [6, 7, 8, 9]])
    );
    assert_eq!(
        ok("States.ArrayPartition($.a, 1e300)", input.clone()),
        json!([[1, 2, 3, 4, 5, 6, 7, 8, 9]])
    );
    for bad in ["0", "-1", "0.4"] {
        let c = fails(&format!("States.ArrayPartition($.a, {bad})"), input.clone());
        assert!(
            c.contains("chunk size (second argument) must be a positive integer"),
            "{c}"
        );
    }
    assert!(
        fails("States.ArrayPartition($.a, '2')", input.clone())
            .contains("argument 2 must be an integer")
    );
    assert!(fails("States.ArrayPartition('x', 2)", input).contains("argument 1 must be an array"));
}

#[test]
fn array_contains_compares_deeply() {
    let input = json!({"a": [1, {"k": [1, 2]}, "s", 1.5]});
    assert_eq!(
        ok("States.ArrayContains($.a, 1)", input.clone()),
        json!(true)
    );
    assert_eq!(
        ok("States.ArrayContains($.a, 1.0)", input.clone()),
        json!(false)
    );
    assert_eq!(
        ok("States.ArrayContains($.a, 's')", input.clone()),
        json!(true)
    );
    assert_eq!(
        ok(
            "States.ArrayContains($.a, States.StringToJson('{\"k\":[1,2]}'))",
            input.clone()
        ),
        json!(true)
    );
    assert!(fails("States.ArrayContains('x', 1)", input).contains("argument 1 must be an array"));
}

#[test]
fn array_range() {
    assert_eq!(
        ok("States.ArrayRange(1, 9, 2)", json!({})),
        json!([1, 3, 5, 7, 9])
    );
    assert_eq!(
        ok("States.ArrayRange(1, 10, 2)", json!({})),
        json!([1, 3, 5, 7, 9])
    );
    assert_eq!(
        ok("States.ArrayRange(0, 3, 1)", json!({})),
        json!([0, 1, 2, 3])
    );
    assert_eq!(
        ok("States.ArrayRange(5, 1, -2)", json!({})),
        json!([5, 3, 1])
    );
    assert_eq!(ok("States.ArrayRange(5, 1, 2)", json!({})), json!([]));
    assert_eq!(
        ok("States.ArrayRange(1.5, 3.4, 0.6)", json!({})),
        json!([2, 3])
    );
    assert_eq!(
        ok("States.ArrayRange(1, 1000, 1)", json!({}))
            .as_array()
            .unwrap()
            .len(),
        1000
    );
    assert!(
        fails("States.ArrayRange(0, 1000, 1)", json!({}))
            .contains("1001 elements, more than the 1000 allowed")
    );
    assert!(
        fails(
            "States.ArrayRange(-9223372036854775808, 9223372036854775807, 1)",
            json!({})
        )
        .contains("more than the 1000")
    );
    assert!(fails("States.ArrayRange(1, 9, 0)", json!({})).contains("must not be 0"));
    assert!(fails("States.ArrayRange(1, 9, 0.4)", json!({})).contains("must not be 0"));
    assert!(
        fails("States.ArrayRange(1, '9', 1)", json!({})).contains("argument 2 must be an integer")
    );
}

#[test]
fn array_get_item() {
    let input = json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9], "i": 5});
    assert_eq!(ok("States.ArrayGetItem($.a, $.i)", input.clone()), json!(6));
    assert_eq!(ok("States.ArrayGetItem($.a, 0)", input.clone()), json!(1));
    assert!(
        fails("States.ArrayGetItem($.a, 9)", input.clone())
            .contains("index 9 is out of bounds for an array of length 9")
    );
    assert!(
        fails("States.ArrayGetItem($.a, -1)", input.clone()).contains("index -1 is out of bounds")
    );
    assert!(
        fails("States.ArrayGetItem($.a, 1.5)", input.clone())
            .contains("argument 2 must be an integer (the index)")
    );
    assert!(fails("States.ArrayGetItem($.i, 0)", input).contains("argument 1 must be an array"));
}

#[test]
fn array_length_and_unique() {
    let input = json!({"a": [1, 2, 3, 3, 3, 3, 3, 3, 4]});
    assert_eq!(ok("States.ArrayLength($.a)", input.clone()), json!(9));
    assert_eq!(ok("States.ArrayUnique($.a)", input), json!([1, 2, 3, 4]));
    // Objects equal whatever their key order; 1 and 1.0 differ, as in Java's JSON.
    let input =
        json!({"a": [{"a": 1, "b": 2}, {"b": 2, "a": 1}, 1, 1.0, 0.0, -0.0, [null], [null], "1"]});
    assert_eq!(
        ok("States.ArrayUnique($.a)", input),
        json!([{"a": 1, "b": 2}, 1, 1.0, 0.0, [null], "1"])
    );
    assert!(
        fails("States.ArrayLength($.a)", json!({"a": {}}))
            .contains("argument 1 must be an array, but got {}")
    );
    assert!(fails("States.ArrayUnique($.a)", json!({"a": "x"})).contains("must be an array"));
}

// ---- encoding and hashing ---------------------------------------------------------------

#[test]
fn base64_round_trips() {
    assert_eq!(
        ok("States.Base64Encode('Data to encode')", json!({})),
        json!("RGF0YSB0byBlbmNvZGU=")
    );
    assert_eq!(
        ok("States.Base64Encode('héllo ✓')", json!({})),
        json!("aMOpbGxvIOKckw==")
    );
    assert_eq!(
        ok("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", json!({})),
        json!("Data to encode")
    );
    assert_eq!(
        ok("States.Base64Decode('RGF0YSB0byBlbmNvZGU')", json!({})),
        json!("Data to encode")
    );
    assert_eq!(
        ok(
            "States.Base64Decode($.s)",
            json!({"s": "RGF0YSB0\r\nbyBlbmNvZGU="})
        ),
        json!("Data to encode")
    );
    assert_eq!(ok("States.Base64Decode('')", json!({})), json!(""));
}

#[test]
fn base64_failures_and_limits() {
    assert!(fails("States.Base64Decode('not base64!')", json!({})).contains("is not Base64"));
    assert!(fails("States.Base64Encode(1)", json!({})).contains("argument 1 must be a string"));
    assert!(
        fails("States.Base64Decode(null)", json!({}))
            .contains("argument 1 must be a string, but got null")
    );
    let at_limit = "a".repeat(10_000);
    assert!(run("States.Base64Encode($.s)", json!({ "s": at_limit })).is_ok());
    // 10,000 characters of 2 bytes each are still 10,000 characters.
    assert!(
        run(
            "States.Base64Encode($.s)",
            json!({ "s": "é".repeat(10_000) })
        )
        .is_ok()
    );
    let c = fails(
        "States.Base64Encode($.s)",
        json!({ "s": "a".repeat(10_001) }),
    );
    assert!(
        c.contains("10001 characters, more than the 10000 allowed"),
        "{c}"
    );
    let c = fails(
        "States.Base64Decode($.s)",
        json!({ "s": "A".repeat(10_004) }),
    );
    assert!(c.contains("more than the 10000 allowed"), "{c}");
}

#[test]
fn hash_every_algorithm() {
    for (alg, digest) in [
        ("MD5", "812f45842bc6d66ee14572ce20db8e86"),
        ("SHA-1", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
        (
            "SHA-256",
            "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3",
        ),
        (
            "SHA-384",
            "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562",
        ),
        (
            "SHA-512",
            "6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4",
        ),
    ] {
        assert_eq!(
            ok(&format!("States.Hash('input data', '{alg}')"), json!({})),
            json!(digest)
        );
    }
}

#[test]
fn hash_failures() {
    assert!(
        fails("States.Hash('x', 'SHA256')", json!({}))
            .contains("unknown hash algorithm \"SHA256\"")
    );
    assert!(fails("States.Hash('x', 'md5')", json!({})).contains("unknown hash algorithm"));
    assert!(
        fails("States.Hash($.o, 'MD5')", json!({"o": {}})).contains("argument 1 must be a string")
    );
    assert!(fails("States.Hash('x', 1)", json!({})).contains("argument 2 must be a string"));
    assert!(
        fails(
            "States.Hash($.s, 'MD5')",
            json!({ "s": "a".repeat(10_001) })
        )
        .contains("more than the 10000 allowed")
    );
}

// ---- math -------------------------------------------------------------------------------

#[test]
fn math_add_rounds_like_java() {
    assert_eq!(
        ok("States.MathAdd($.v, $.s)", json!({"v": 111, "s": -1})),
        json!(110)
    );
    assert_eq!(
        ok("States.MathAdd(2147483647, 2147483647)", json!({})),
        json!(4294967294_i64)
    );
    assert_eq!(
        ok("States.MathAdd(0.49999999999999994, 0)", json!({})),
        json!(0)
    );
    assert_eq!(
        ok("States.MathAdd(2147483647.4, 0)", json!({})),
        json!(2147483647)
    );
    assert_eq!(
        ok(
            "States.MathAdd(States.MathAdd(States.MathAdd(1, 2), 3), 4.3)",
            json!({})
        ),
        json!(10)
    );
}

#[test]
fn math_add_failures() {
    for bad in [
        "2147483648",
        "-2147483649",
        "1e20",
        "18446744073709551615",
        "2147483647.5",
    ] {
        let c = fails(&format!("States.MathAdd({bad}, 0)"), json!({}));
        assert!(
            c.contains("argument 1 must be an integer from -2147483648 to 2147483647"),
            "{c}"
        );
    }
    assert!(
        fails("States.MathAdd(1, '1')", json!({}))
            .contains("argument 2 must be an integer, but got \"1\"")
    );
    assert!(fails("States.MathAdd(null, 1)", json!({})).contains("argument 1 must be an integer"));
}

#[test]
fn math_random_stays_in_range() {
    let r = SplitMix::new(9);
    let call = parse("States.MathRandom($.s, $.e)").unwrap();
    for (s, e) in [(1, 999), (-5, -4), (0, 2), (i64::MIN, i64::MAX)] {
        let input = json!({"s": s, "e": e});
        for _ in 0..200 {
            let v = call
                .eval(&resolver(&input, &Value::Null, &Value::Null), &r)
                .unwrap();
            let n = v.as_i64().unwrap();
            assert!((s..e).contains(&n), "{n} not in [{s}, {e})");
        }
    }
    // Rounded: [0.6, 1.6) is [1, 2), so always 1.
    assert_eq!(ok("States.MathRandom(0.6, 1.6)", json!({})), json!(1));
}

#[test]
fn math_random_with_a_seed_is_deterministic() {
    let a = ok("States.MathRandom(1, 1000, 42)", json!({}));
    let different_generator = parse("States.MathRandom(1, 1000, 42)")
        .unwrap()
        .eval(&|_: &str| Ok(Value::Null), &SplitMix::new(77))
        .unwrap();
    assert_eq!(a, different_generator);
    let n = a.as_i64().unwrap();
    assert!((1..1000).contains(&n));
    let wide = ok(
        "States.MathRandom(-9223372036854775808, 9223372036854775807, 7)",
        json!({}),
    );
    assert_eq!(
        wide,
        ok(
            "States.MathRandom(-9223372036854775808, 9223372036854775807, 7)",
            json!({})
        )
    );
}

#[test]
fn math_random_failures() {
    assert!(fails("States.MathRandom(5, 5)", json!({})).contains("must be less than the end"));
    assert!(fails("States.MathRandom(6, 5)", json!({})).contains("must be less than the end"));
    assert!(
        fails("States.MathRandom('1', 5)", json!({})).contains("argument 1 must be an integer")
    );
    assert!(
        fails("States.MathRandom(1, 5, 'seed')", json!({}))
            .contains("argument 3 must be an integer")
    );
}

#[test]
fn java_random_matches_java() {
    // `new java.util.Random(42).nextInt()` is -1170105035 in every JDK.
    let mut r = functions::JavaRandom::new(42);
    assert_eq!(r.next(32), -1_170_105_035);
}

// ---- strings and UUIDs ------------------------------------------------------------------

#[test]
fn string_split_on_any_delimiter_character() {
    let split = |s: &str, d: &str| ok("States.StringSplit($.s, $.d)", json!({"s": s, "d": d}));
    assert_eq!(split("1,2,3,4,5", ","), json!(["1", "2", "3", "4", "5"]));
    assert_eq!(
        split("This.is+a,test=string", ".+,="),
        json!(["This", "is", "a", "test", "string"])
    );
    assert_eq!(split("abc", ""), json!(["abc"]));
    assert_eq!(split("", ","), json!([]));
    assert_eq!(split("a✓b", "✓"), json!(["a", "b"]));
    assert!(fails("States.StringSplit(1, ',')", json!({})).contains("argument 1 must be a string"));
    assert!(
        fails("States.StringSplit('a', $.d)", json!({"d": [","]}))
            .contains("argument 2 must be a string")
    );
}

#[test]
fn uuid_is_version_4() {
    let v = ok("States.UUID()", json!({}));
    let s = v.as_str().unwrap();
    assert_eq!(s.len(), 36);
    assert_eq!(&s[14..15], "4");
}

#[test]
fn resolve_errors_pass_through_unchanged() {
    let e = run("States.Array($.missing)", json!({})).unwrap_err();
    assert_eq!(e.error, names::RUNTIME);
    let e = run(
        "States.Format('{}', States.ArrayLength($.missing))",
        json!({}),
    )
    .unwrap_err();
    assert_eq!(e.error, names::RUNTIME);
}

#[test]
fn java_doubles() {
    for (f, text) in [
        (1.1, "1.1"),
        (100.0, "100.0"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1234567.0, "1234567.0"),
        (9999999.0, "9999999.0"),
        (1e7, "1.0E7"),
        (1.5e-5, "1.5E-5"),
        (123456789.125, "1.23456789125E8"),
        (-2.5, "-2.5"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (f64::MAX, "1.7976931348623157E308"),
        (0.1, "0.1"),
    ] {
        assert_eq!(java_double(f), text, "{f}");
    }
}
