//! Exact parsing and evaluation of the answers the verifiers check: signed integers and
//! countdown expressions over `+ - * /` and parentheses, evaluated in exact rational
//! arithmetic. Parsers return `None` on anything malformed (and never panic: overflow,
//! division by zero and deep nesting are rejected, not trapped).

/// A reduced fraction `num / den` with `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rational {
    /// Numerator.
    pub num: i128,
    /// Denominator, positive.
    pub den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Magnitude bound on numerators and denominators: beyond it an expression is rejected,
/// which keeps every product inside `i128`.
const LIMIT: i128 = 1 << 60;

impl Rational {
    /// The integer `n`.
    pub fn int(n: i64) -> Self {
        Self {
            num: i128::from(n),
            den: 1,
        }
    }

    fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let (mut num, mut den) = (num / g, den / g);
        if den < 0 {
            num = -num;
            den = -den;
        }
        (num.abs() <= LIMIT && den <= LIMIT).then_some(Self { num, den })
    }

    fn apply(self, op: u8, rhs: Self) -> Option<Self> {
        let (a, b, c, d) = (self.num, self.den, rhs.num, rhs.den);
        match op {
            b'+' => Self::new(a * d + c * b, b * d),
            b'-' => Self::new(a * d - c * b, b * d),
            b'*' => Self::new(a * c, b * d),
            b'/' => Self::new(a * d, b * c),
            _ => None,
        }
    }

    /// The value as an integer, if it is one.
    pub fn as_int(self) -> Option<i64> {
        (self.den == 1)
            .then(|| i64::try_from(self.num).ok())
            .flatten()
    }
}

/// A signed decimal integer with no sign other than a leading `-`, no spaces and at most 18
/// digits; leading zeros are rejected except for `0` itself (so `"007"` is malformed).
pub fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty()
        || digits.len() > 18
        || !digits.bytes().all(|c| c.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || (s.starts_with('-') && digits == "0")
    {
        return None;
    }
    s.parse().ok()
}

/// A parsed countdown expression: its exact value and the numbers it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    /// Exact value.
    pub value: Rational,
    /// The literals in order of appearance.
    pub numbers: Vec<i64>,
}

const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    numbers: Vec<i64>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    // expr := term (('+' | '-') term)*
    fn expr(&mut self, depth: usize) -> Option<Rational> {
        let mut acc = self.term(depth)?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            acc = acc.apply(op, self.term(depth)?)?;
        }
        Some(acc)
    }

    // term := atom (('*' | '/') atom)*
    fn term(&mut self, depth: usize) -> Option<Rational> {
        let mut acc = self.atom(depth)?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.pos += 1;
            acc = acc.apply(op, self.atom(depth)?)?;
        }
        Some(acc)
    }

    // atom := number | '(' expr ')'
    fn atom(&mut self, depth: usize) -> Option<Rational> {
        match self.peek()? {
            b'(' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                let v = self.expr(depth + 1)?;
                (self.peek()? == b')').then_some(())?;
                self.pos += 1;
                Some(v)
            }
            c if c.is_ascii_digit() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).ok()?;
                let n = parse_int(text)?;
                self.numbers.push(n);
                Some(Rational::int(n))
            }
            _ => None,
        }
    }
}

/// Parses and evaluates a countdown expression: non-negative integer literals, binary
/// `+ - * /` with the usual precedence, parentheses; no unary minus, no spaces. Returns
/// `None` for malformed input, division by zero or values beyond 2^60.
pub fn eval_expression(s: &str) -> Option<Evaluated> {
    let mut p = Parser {
        s: s.as_bytes(),
        pos: 0,
        numbers: Vec::new(),
    };
    let value = p.expr(0)?;
    (p.pos == s.len()).then_some(Evaluated {
        value,
        numbers: p.numbers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn precedence_and_parentheses() {
        assert_eq!(eval_expression("3+5*7").unwrap().value.as_int(), Some(38));
        assert_eq!(eval_expression("(3+5)*7").unwrap().value.as_int(), Some(56));
        assert_eq!(eval_expression("8/3*3").unwrap().value.as_int(), Some(8));
        assert_eq!(eval_expression("7-2-1").unwrap().value.as_int(), Some(4));
        assert_eq!(eval_expression("7/2").unwrap().value.as_int(), None);
        assert_eq!(
            eval_expression("(1+2)*(3+4)").unwrap().numbers,
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "", "1+", "(1+2", "1+2)", "1/0", "1/(2-2)", "-1+2", "1 + 2", "01+2", "()", "1++2",
        ] {
            assert!(eval_expression(s).is_none(), "{s:?} should be rejected");
        }
        assert!(eval_expression(&"(".repeat(100)).is_none());
        assert!(eval_expression("999999999999999999*999999999999999999*999999999").is_none());
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int("-42"), Some(-42));
        assert_eq!(parse_int("0"), Some(0));
        for s in ["", "-", "-0", "007", "4 2", "+4", "1e3", "١٢"] {
            assert_eq!(parse_int(s), None, "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,64}") {
            let _ = eval_expression(&s);
            let _ = parse_int(&s);
        }

        #[test]
        fn parsers_never_panic_on_expression_alphabet(s in "[0-9+*/()-]{0,80}") {
            if let Some(e) = eval_expression(&s) {
                prop_assert!(e.value.den > 0);
            }
        }
    }
}
