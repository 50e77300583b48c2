//! Markdown tables for results in docs and reproduction reports.

/// Renders a GitHub-flavoured Markdown table with padded columns.
///
/// Rows shorter than the header are padded with empty cells; a row longer
/// than the header adds columns with empty headers. `|` in a cell is escaped
/// and line breaks become spaces, so a cell can never break the table.
///
/// ```
/// let t = kiln_track::markdown_table(
///     &["algo", "return"],
///     &[vec!["ppo".into(), "500.0 ± 0.0".into()]],
/// );
/// assert_eq!(t, "| algo | return      |\n| ---- | ----------- |\n| ppo  | 500.0 ± 0.0 |\n");
/// ```
pub fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain([headers.len()])
        .max()
        .unwrap_or(0);
    if columns == 0 {
        return String::new();
    }
    let pad_row = |cells: Vec<String>| -> Vec<String> {
        let mut cells = cells;
        cells.resize(columns, String::new());
        cells
    };
    let header = pad_row(headers.iter().map(|h| escape_cell(h)).collect());
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| pad_row(r.iter().map(|c| escape_cell(c)).collect()))
        .collect();
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            body.iter()
                .chain([&header])
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(3) // the separator needs at least `---`
        })
        .collect();

    let mut out = String::new();
    let mut push_row = |cells: &[String]| {
        out.push('|');
        for (cell, width) in cells.iter().zip(&widths) {
            let pad = width - cell.chars().count();
            out.push(' ');
            out.push_str(cell);
            out.push_str(&" ".repeat(pad));
            out.push_str(" |");
        }
        out.push('\n');
    };
    push_row(&header);
    push_row(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in &body {
        push_row(row);
    }
    out
}

fn escape_cell(cell: &str) -> String {
    cell.replace('|', "\\|").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_ragged_rows_and_escapes() {
        let rows = vec![
            vec!["a|b".to_string()],
            vec!["x".into(), "y\nz".into(), "extra".into()],
        ];
        let t = markdown_table(&["h1", "h2"], &rows);
        let expected = "\
| h1   | h2  |       |
| ---- | --- | ----- |
| a\\|b |     |       |
| x    | y z | extra |
";
        assert_eq!(t, expected);
    }

    #[test]
    fn empty_inputs() {
        assert_eq!(markdown_table(&[], &[]), "");
        assert_eq!(markdown_table(&["only"], &[]), "| only |\n| ---- |\n");
    }
}
