//! Label sets of metric samples: `{name="value",…}`, values escaped as both text formats
//! require (`\` → `\\`, `"` → `\"`, line feed → `\n`); nothing at all for an empty set.

/// What can be written as a sample's labels.
pub trait LabelSet {
    /// Writes each label through `w`.
    fn write_labels(&self, w: &mut Writer<'_>);
}

impl LabelSet for () {
    fn write_labels(&self, _: &mut Writer<'_>) {}
}

impl<const N: usize> LabelSet for [(&str, &str); N] {
    fn write_labels(&self, w: &mut Writer<'_>) {
        for (k, v) in self {
            w.label(k, v);
        }
    }
}

impl LabelSet for [(&str, String)] {
    fn write_labels(&self, w: &mut Writer<'_>) {
        for (k, v) in self {
            w.label(k, v);
        }
    }
}

impl<T: LabelSet + ?Sized> LabelSet for &T {
    fn write_labels(&self, w: &mut Writer<'_>) {
        (**self).write_labels(w);
    }
}

/// Writes the labels of one sample after its name.
pub struct Writer<'a> {
    out: &'a mut String,
    open: bool,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(out: &'a mut String) -> Writer<'a> {
        Writer { out, open: false }
    }

    /// One `name="value"`: `{` before the first, `,` before the others.
    pub fn label(&mut self, name: &str, value: &str) {
        self.out.push(if self.open { ',' } else { '{' });
        self.open = true;
        self.out.push_str(name);
        self.out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '"' => self.out.push_str("\\\""),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    /// `}` after the last label, if any was written.
    pub(crate) fn close(self) {
        if self.open {
            self.out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(l: &dyn LabelSet) -> String {
        let mut s = String::new();
        let mut w = Writer::new(&mut s);
        l.write_labels(&mut w);
        w.close();
        s
    }

    #[test]
    fn values_are_escaped_and_an_empty_set_writes_nothing() {
        assert_eq!(written(&()), "");
        assert_eq!(
            written(&[("pool", "a\"b\\c\nd"), ("server", "127.0.0.1:80")]),
            "{pool=\"a\\\"b\\\\c\\nd\",server=\"127.0.0.1:80\"}"
        );
        let owned: Vec<(&str, String)> = vec![("route", "3".to_owned())];
        assert_eq!(written(&owned.as_slice()), "{route=\"3\"}");
    }
}
