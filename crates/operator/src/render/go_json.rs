//! Go's `json.Indent(dst, src, "", "    ")`, byte for byte: the operator re-indents every NAD
//! `spec.config` with it, and Multus/CNI consumers (and users' diff tools) see that exact text.
//!
//! Rules: whitespace between tokens is dropped (leading whitespace too; trailing whitespace
//! after the value is kept), each object member / array element starts on a new line indented
//! by depth, `:` becomes `": "`, empty `{}` / `[]` stay compact, string and number tokens are
//! copied verbatim (escapes untouched). Invalid JSON is an error, as in Go.

/// Re-indent `src` (which must be valid JSON) the way Go's `json.Indent` with a four-space
/// indent does. `Err` carries serde_json's description of the syntax error.
pub fn go_indent(src: &str) -> Result<String, String> {
    serde_json::from_str::<serde::de::IgnoredAny>(src).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut need_indent = false; // just opened a container; newline pending until non-empty
    let mut in_string = false;
    let mut escaped = false;
    let body = src.trim_start_matches([' ', '\t', '\r', '\n']);
    let trimmed_end = body.trim_end_matches([' ', '\t', '\r', '\n']);
    let trailing = &body[trimmed_end.len()..];
    for c in trimmed_end.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            continue;
        }
        if need_indent && c != '}' && c != ']' {
            need_indent = false;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                depth += 1;
                need_indent = true;
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if need_indent {
                    need_indent = false;
                } else {
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
    }
    out.push_str(trailing);
    Ok(out)
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("    ");
    }
}

#[cfg(test)]
mod tests {
    use super::go_indent;

    #[test]
    fn indents_like_go() {
        let got = go_indent(r#" { "a":1, "b" : [ ], "c":{}, "d":[1,{"e":"x y"}] }"#).expect("valid");
        let want = "{\n    \"a\": 1,\n    \"b\": [],\n    \"c\": {},\n    \"d\": [\n        1,\n        {\n            \"e\": \"x y\"\n        }\n    ]\n}";
        assert_eq!(got, want);
    }

    #[test]
    fn keeps_string_escapes_and_rejects_invalid_json() {
        assert_eq!(
            go_indent(r#"{"a":"q\"{,:}"}"#).expect("valid"),
            "{\n    \"a\": \"q\\\"{,:}\"\n}"
        );
        assert!(go_indent(r#"{"a":1,}"#).is_err());
        assert!(go_indent("{").is_err());
    }
}
