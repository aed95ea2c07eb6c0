//! The command of `--exec` and `--agent`, split into words as a POSIX shell splits them (POSIX
//! Shell Command Language §2.2 Quoting), with no expansion of any kind: no variables, no
//! globs, no `~`, no command substitution, no pipes or redirections. The program is run
//! directly, not through a shell; for those, run `sh -c '...'`.

/// Splits `command` into the program and its arguments.
///
/// # Errors
/// An unterminated quote, a trailing backslash, or no program (or an empty one).
pub fn split_command(command: &str) -> Result<(String, Vec<String>), String> {
    let mut words = split_words(command)?.into_iter();
    match words.next() {
        None => Err(String::from("missing the program after '='")),
        Some(p) if p.is_empty() => Err(String::from("the program must not be empty")),
        Some(p) => Ok((p, words.collect())),
    }
}

/// Splits `s` into words: blanks and newlines separate them, and quoting keeps them in a word.
///
/// - §2.2.1: a backslash outside quotes keeps the next character as it is; a backslash and a
///   newline are removed (a line continuation).
/// - §2.2.2: inside single quotes every character is kept as it is, up to the closing quote (so
///   a single quote cannot be in single quotes).
/// - §2.2.3: inside double quotes every character is kept as it is, except a backslash before
///   `$`, `` ` ``, `"`, `\` or a newline, which quotes that character (the newline is removed).
///   Before any other character the backslash is kept. `$` and `` ` `` are kept, not expanded.
///
/// A quoted empty string (`''` or `""`) is a word of its own, as in the shell.
///
/// # Errors
/// An unterminated single or double quote (the message shows the text from the quote on), or
/// a backslash at the very end (which would quote nothing).
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    // The word being read: `None` between words (an empty quoted word is `Some("")`).
    let mut word: Option<String> = None;
    let mut chars = s.char_indices();
    let unterminated = |kind: &str, at: usize| format!("unterminated {kind} quote: {}", &s[at..]);
    while let Some((at, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((_, next)) => word.get_or_insert_default().push(next),
                None => return Err(String::from("a trailing backslash quotes nothing")),
            },
            '\'' => {
                let w = word.get_or_insert_default();
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, q)) => w.push(q),
                        None => return Err(unterminated("single", at)),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_default();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\n')) => {}
                            Some((_, q @ ('$' | '`' | '"' | '\\'))) => w.push(q),
                            Some((_, q)) => {
                                w.push('\\');
                                w.push(q);
                            }
                            None => return Err(unterminated("double", at)),
                        },
                        Some((_, q)) => w.push(q),
                        None => return Err(unterminated("double", at)),
                    }
                }
            }
            _ => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_words(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn blanks_separate_words() {
        assert_eq!(split("tail  -n 5\t-f\n/var/log/x "), ["tail", "-n", "5", "-f", "/var/log/x"]);
        assert!(split("").is_empty());
        assert!(split(" \t\n").is_empty());
    }

    #[test]
    fn single_quotes_keep_everything() {
        // §2.2.2: backslash, double quote, `$` and blanks are all literal in single quotes.
        assert_eq!(split(r#"echo 'a  b' '\n "$x"'"#), ["echo", "a  b", r#"\n "$x""#]);
        assert_eq!(split("a'b c'd"), ["ab cd"]);
        assert_eq!(split("'' x ''"), ["", "x", ""]);
    }

    #[test]
    fn double_quotes_escape_only_five_characters() {
        // §2.2.3: `\` quotes `$`, `` ` ``, `"`, `\` and newline; before anything else it stays.
        assert_eq!(split(r#""a \$ \` \" \\ \n b""#), [r#"a $ ` " \ \n b"#]);
        assert_eq!(split("\"one\\\ntwo\""), ["onetwo"]);
        assert_eq!(split(r#""it's" """#), ["it's", ""]);
        // No expansion: `$HOME`, `*` and `~` are kept as written.
        assert_eq!(split(r#""$HOME" * ~ `id`"#), ["$HOME", "*", "~", "`id`"]);
    }

    #[test]
    fn backslash_outside_quotes() {
        // §2.2.1: it keeps the next character; backslash-newline is removed.
        assert_eq!(split(r"a\ b \'c\' \\ \x"), ["a b", "'c'", r"\", "x"]);
        assert_eq!(split("one\\\ntwo"), ["onetwo"]);
    }

    #[test]
    fn the_ticker_of_the_issue() {
        assert_eq!(
            split(r#"sh -c "while :; do date; sleep 1; done""#),
            ["sh", "-c", "while :; do date; sleep 1; done"]
        );
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        let e = |s: &str| split_words(s).err().unwrap_or_else(|| panic!("{s:?} split"));
        assert_eq!(e(r#"sh -c "date"#), r#"unterminated double quote: "date"#);
        assert_eq!(e(r#"sh -c "date\""#), r#"unterminated double quote: "date\""#);
        assert_eq!(e("sh -c 'date x"), "unterminated single quote: 'date x");
        assert_eq!(e(r#"a "b\"#), r#"unterminated double quote: "b\"#);
        assert_eq!(e(r"date \"), "a trailing backslash quotes nothing");
    }

    #[test]
    fn program_and_arguments() {
        let (p, args) = split_command("'my prog' -x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.as_str(), args), ("my prog", vec![String::from("-x")]));
        assert_eq!(split_command("  "), Err(String::from("missing the program after '='")));
        assert_eq!(split_command("'' x"), Err(String::from("the program must not be empty")));
    }
}
