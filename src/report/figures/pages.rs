//! The pages whose SVG is written by hand rather than drawn with plotters: the ablation
//! table as a page, and contact sheets of the most confident mistakes.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::render::{png, rasterize, save, svg_options, xml};
use crate::report::analysis::CLEAN;
use crate::report::runs::{Prediction, Run};

/// A table as one SVG page (header row bold): the PDF form of the ablation table.
pub fn table_page(title: &str, header: &[String], rows: &[Vec<String>], out: &Path) -> Result<()> {
    const CHAR: f64 = 7.4;
    const ROW: f64 = 22.0;
    let cols = header.len();
    let widths: Vec<f64> = (0..cols)
        .map(|c| {
            let longest = std::iter::once(&header[c])
                .chain(rows.iter().filter_map(|r| r.get(c)))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(1);
            longest as f64 * CHAR + 16.0
        })
        .collect();
    let width = widths.iter().sum::<f64>() + 20.0;
    let height = ROW * (rows.len() as f64 + 1.0) + 60.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"13\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"10\" y=\"24\" font-size=\"16\">{}</text>",
        xml(title)
    );
    for (r, row) in std::iter::once(header)
        .chain(rows.iter().map(Vec::as_slice))
        .enumerate()
    {
        let y = 50.0 + ROW * r as f64;
        if r % 2 == 1 {
            svg.push_str(&format!(
                "<rect x=\"10\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ROW}\" fill=\"#f0f0f0\"/>",
                y - 15.0,
                width - 20.0
            ));
        }
        let mut x = 18.0;
        for (c, cell) in row.iter().enumerate() {
            let weight = if r == 0 { " font-weight=\"bold\"" } else { "" };
            svg.push_str(&format!(
                "<text x=\"{x:.1}\" y=\"{y:.1}\"{weight}>{}</text>",
                xml(cell)
            ));
            x += widths[c];
        }
    }
    // The rule under the header row.
    svg.push_str(&format!(
        "<line x1=\"10\" y1=\"56.0\" x2=\"{:.1}\" y2=\"56.0\" stroke=\"black\"/></svg>",
        width - 10.0
    ));
    save(&svg, out, &svg_options()?)
}

/// Thumbnail size and layout of a contact sheet, in pixels.
const THUMB: u32 = 96;
const LEFT: u32 = 170;
const CELL_W: u32 = THUMB + 16;
const CELL_H: u32 = THUMB + 30;

/// The most confident mistakes of `run`, `k` per generator, as a PNG contact sheet: one row
/// per generator, each thumbnail captioned with its label and score. False when the run
/// made no mistake.
pub fn contact_sheet(run: &Run, k: usize, out: &Path) -> Result<bool> {
    let rows = mistakes(run, k);
    if rows.is_empty() {
        return Ok(false);
    }
    let tree = usvg::Tree::from_str(&captions(run, k, &rows), &svg_options()?)?;
    let mut sheet = rasterize(&tree, 1.0)?;
    for (r, wrong) in rows.values().enumerate() {
        for (c, p) in wrong.iter().enumerate() {
            let (x, y) = (LEFT + CELL_W * c as u32, 50 + CELL_H * r as u32);
            image::imageops::overlay(&mut sheet, &thumbnail(&p.path), x as i64, y as i64);
        }
    }
    crate::atomic::write(out, &png(&sheet)?)?;
    Ok(true)
}

/// The clean mistakes per generator, the `k` most confident first.
fn mistakes(run: &Run, k: usize) -> BTreeMap<&str, Vec<&Prediction>> {
    let mut rows: BTreeMap<&str, Vec<&Prediction>> = BTreeMap::new();
    for p in run
        .predictions
        .iter()
        .filter(|p| p.perturbation == CLEAN && !p.correct())
    {
        rows.entry(p.generator.as_str()).or_default().push(p);
    }
    for wrong in rows.values_mut() {
        wrong.sort_by(|a, b| b.logit.abs().total_cmp(&a.logit.abs()));
        wrong.truncate(k);
    }
    rows
}

/// The sheet without its thumbnails: title, generator names and captions.
fn captions(run: &Run, k: usize, rows: &BTreeMap<&str, Vec<&Prediction>>) -> String {
    let (w, h) = (
        LEFT + CELL_W * k as u32 + 10,
        50 + CELL_H * rows.len() as u32,
    );
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"10\" y=\"26\" font-size=\"16\">most confident mistakes — {} (seed {}), clean test images</text>",
        xml(&run.variant),
        run.seed
    );
    for (r, (generator, wrong)) in rows.iter().enumerate() {
        let y = 50 + CELL_H * r as u32;
        svg.push_str(&format!(
            "<text x=\"10\" y=\"{}\">{}</text>",
            y + THUMB / 2,
            xml(generator)
        ));
        for (c, p) in wrong.iter().enumerate() {
            let x = LEFT + CELL_W * c as u32;
            let truth = if p.label == 1 { "fake" } else { "real" };
            svg.push_str(&format!(
                "<text x=\"{x}\" y=\"{}\">{truth}, score {:.3}</text>",
                y + THUMB + 16,
                p.score
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The image at `path` as a thumbnail; a file moved since the test gives a grey square,
/// which keeps the grid honest.
fn thumbnail(path: &str) -> image::RgbaImage {
    let limits = crate::data::DecodeLimits::default();
    match crate::data::decode_file(Path::new(path), &limits) {
        Ok(img) => image::imageops::resize(
            &image::DynamicImage::ImageRgb8(img).to_rgba8(),
            THUMB,
            THUMB,
            image::imageops::FilterType::Triangle,
        ),
        Err(_) => image::RgbaImage::from_pixel(THUMB, THUMB, image::Rgba([200, 200, 200, 255])),
    }
}
