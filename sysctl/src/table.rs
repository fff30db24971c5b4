//! Aligned plain-text tables for terminal output.

/// A table with a header row; every column but the last is padded to its widest cell.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells render empty.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        fn cell(row: &[String], i: usize) -> &str {
            row.get(i).map(String::as_str).unwrap_or("")
        }
        let columns = self.headers.len();
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                std::iter::once(&self.headers)
                    .chain(&self.rows)
                    .map(|row| cell(row, i).chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let text = cell(row, i);
                if i + 1 == columns {
                    line.push_str(text);
                } else {
                    line.push_str(&format!("{text:<width$}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_the_last_is_not_padded() {
        let mut t = Table::new(&["key", "ok", "note"]);
        t.row(vec!["net.core.somaxconn".into(), "yes".into(), "".into()]);
        t.row(vec!["fs.nr_open".into(), "no".into(), "below".into()]);
        assert_eq!(
            t.render(),
            "key                 ok   note\n\
             net.core.somaxconn  yes\n\
             fs.nr_open          no   below\n"
        );
    }
}
