use super::*;

#[test]
fn exports_are_added_and_the_module_stays_valid() {
    let wasm = wat::parse_str(
        r#"(module
             (func $a) (func $b (result i32) i32.const 7)
             (memory (export "memory") 1)
             (export "a" (func $a)))"#,
    )
    .unwrap();
    let out = with_exports(&wasm, &[("b_too".to_string(), 1)]).unwrap();
    wasmparser::Validator::new().validate_all(&out).unwrap();
    let mut names = Vec::new();
    for p in Parser::new(0).parse_all(&out) {
        if let Payload::ExportSection(r) = p.unwrap() {
            for e in r {
                let e = e.unwrap();
                names.push((e.name.to_string(), e.index));
            }
        }
    }
    assert_eq!(
        names,
        [
            ("memory".to_string(), 0),
            ("a".to_string(), 0),
            ("b_too".to_string(), 1)
        ]
    );
}

#[test]
fn a_long_export_section_keeps_its_size_right() {
    // More than 127 bytes of exports: a two-byte section size before and after.
    let mut text = String::from("(module (func $f)");
    for i in 0..40 {
        text.push_str(&format!(" (export \"export_number_{i}\" (func $f))"));
    }
    text.push(')');
    let wasm = wat::parse_str(&text).unwrap();
    let out = with_exports(&wasm, &[("extra".to_string(), 0)]).unwrap();
    wasmparser::Validator::new().validate_all(&out).unwrap();
}

#[test]
fn the_guards_are_read_from_run_and_turn() {
    let wasm = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (func (export "run") (result i32)
               (drop (i32.load8_u offset=100 (i32.const 0)))
               (drop (i32.load8_u offset=104 (i32.const 0)))
               i32.const 0)
             (func (export "turn") (param i32 i32) (result i32)
               (drop (i32.load8_u offset=100 (i32.const 0)))
               (drop (i32.load8_u offset=116 (i32.const 0)))
               i32.const 0))"#,
    )
    .unwrap();
    let g = guards(&wasm).unwrap();
    assert_eq!((g.ran, g.turned, g.in_turn), (100, 104, 116));
}

#[test]
fn a_module_without_the_reactor_guards_is_refused() {
    let wasm =
        wat::parse_str(r#"(module (func (export "run") (result i32) i32.const 0))"#).unwrap();
    assert!(guards(&wasm).is_err());
}
