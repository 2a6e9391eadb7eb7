//! Does a format string of the code produce a quoted message?

/// Least fixed text a format string must have to vouch for a quoted message.
pub const MIN_FIXED: usize = 16;

/// The fixed pieces of a format string: the text between `{…}` placeholders.
pub fn fixed_pieces(format: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                '{'
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                '}'
            }
            '{' => {
                for inner in chars.by_ref() {
                    if inner == '}' {
                        break;
                    }
                }
                pieces.push(String::new());
                continue;
            }
            other => other,
        };
        if let Some(last) = pieces.last_mut() {
            last.push(piece);
        }
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// True when `format`'s fixed pieces carry enough text and all occur in `quote`, in order.
pub fn produces(format: &str, quote: &str) -> bool {
    let pieces = fixed_pieces(format);
    if pieces.iter().map(|p| p.chars().count()).sum::<usize>() < MIN_FIXED {
        return false;
    }
    let mut rest = quote;
    for piece in &pieces {
        match rest.find(piece.as_str()) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_strings_match_their_output() {
        assert!(produces(
            "client certificate {} has expired; renew it (cargo xtask certs --force) and restart",
            "router: client certificate /tmp/c.pem has expired; renew it (cargo xtask certs --force) and restart"
        ));
        assert!(!produces(
            "client certificate {} has expired; renew it",
            "router: client certificate /tmp/c.pem is expired; renew it"
        ));
        assert!(
            !produces("error: {e}", "error: anything at all"),
            "too little fixed text"
        );
        assert_eq!(fixed_pieces("a {{b}} {x:#} c{}"), vec!["a {b} ", " c"]);
    }
}
