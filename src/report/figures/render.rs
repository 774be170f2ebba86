//! The rendering every figure shares: one SVG drawn with plotters, written as a vector PDF
//! with real, selectable text (svg2pdf) and a PNG (resvg) from that same SVG, so the two
//! never disagree; and the panel, axis and legend styling. Text is DejaVu Sans: usvg would
//! map `sans-serif` to Arial, which a Debian machine lacks, and every label would silently
//! vanish.
use std::ops::Range;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::chart::MeshStyle;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Fonts figures are set in: the first that exists is loaded.
const FONT_FILES: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];
const FAMILY: &str = "DejaVu Sans";
/// Pixel size of one panel; PNGs are rendered at twice this.
const PANEL: (u32, u32) = (640, 440);
const PNG_SCALE: f32 = 2.0;

/// usvg options with DejaVu Sans as the sans-serif family, or an error that says how to
/// install it.
pub(super) fn svg_options() -> Result<usvg::Options<'static>> {
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    for f in FONT_FILES.iter().filter(|f| Path::new(f).is_file()) {
        db.load_font_file(f)
            .with_context(|| format!("loading the font {f}"))?;
    }
    db.load_system_fonts();
    let found = db
        .faces()
        .any(|face| face.families.iter().any(|(name, _)| name == FAMILY));
    if !found {
        return Err(crate::usage!(
            "figures need the {FAMILY} font (looked for {}; Debian: apt install fonts-dejavu-core, which scripts/bootstrap.sh does)",
            FONT_FILES.join(", ")
        ));
    }
    db.set_sans_serif_family(FAMILY);
    opt.font_family = FAMILY.into();
    Ok(opt)
}

/// Writes `stem.svg`, `stem.pdf` and `stem.png` from one SVG document.
pub(super) fn save(svg: &str, stem: &Path, opt: &usvg::Options) -> Result<()> {
    let tree = usvg::Tree::from_str(svg, opt)
        .with_context(|| format!("parsing the SVG of {}", stem.display()))?;
    let pdf = svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions::default(),
    )
    .map_err(|e| anyhow!("writing {}.pdf: {e}", stem.display()))?;
    let png = png(&rasterize(&tree, PNG_SCALE)?)?;
    crate::atomic::write(&stem.with_extension("svg"), svg.as_bytes())?;
    crate::atomic::write(&stem.with_extension("pdf"), &pdf)?;
    crate::atomic::write(&stem.with_extension("png"), &png)
}

/// `tree` drawn `scale` times its size on white.
pub(super) fn rasterize(tree: &usvg::Tree, scale: f32) -> Result<image::RgbaImage> {
    let size = tree.size().to_int_size();
    let (w, h) = (
        (size.width() as f32 * scale) as u32,
        (size.height() as f32 * scale) as u32,
    );
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h).context("allocating the PNG")?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        tree,
        resvg::tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    // Opaque (white background), so the premultiplied RGBA equals straight RGBA.
    image::RgbaImage::from_raw(w, h, pixmap.take()).context("PNG buffer size")
}

pub(super) fn png(image: &image::RgbaImage) -> Result<Vec<u8>> {
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}

/// A distinct colour per series.
pub(super) fn colour(i: usize) -> RGBColor {
    let (r, g, b) = Palette99::pick(i).to_rgba().rgb();
    RGBColor(r, g, b)
}

/// One SVG of `n` panels side by side; `draw` fills panel i.
pub(super) fn panels(n: usize, draw: impl Fn(usize, &Area) -> Result<()>) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PANEL.0 * n.max(1) as u32, PANEL.1))
            .into_drawing_area();
        root.fill(&WHITE)?;
        for (i, area) in root.split_evenly((1, n.max(1))).iter().enumerate() {
            draw(i, area)?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// Axis labels for categories drawn at 0, 1, 2, …: the name at an integer tick, nothing
/// elsewhere.
pub(super) fn category_label(names: &[String]) -> impl Fn(&f64) -> String + '_ {
    move |x: &f64| {
        let j = x.round();
        if (x - j).abs() < 1e-6 && j >= 0.0 && (j as usize) < names.len() {
            names[j as usize].clone()
        } else {
            String::new()
        }
    }
}

/// One panel of a figure.
pub(super) type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;

/// The 2-D chart every figure panel draws on.
pub(super) type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The legend box of a panel: bordered, on a translucent white background.
pub(super) fn legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    position: SeriesLabelPosition,
    opacity: f64,
    size: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(opacity))
        .border_style(BLACK)
        .label_font(font(size))
        .draw()?;
    Ok(())
}

/// A legend key for a line series: a short stroke in its colour.
pub(super) fn line_key(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
}

pub(super) fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().into()
}

/// Escapes text for SVG.
pub(super) fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A panel's chart: caption (text, type size), label areas (x, y) and ranges (x, y).
pub(super) fn chart<'a, 'b>(
    area: &'a Area<'b>,
    (caption, size): (&str, u32),
    (x_area, y_area): (u32, u32),
    (x, y): (Range<f64>, Range<f64>),
) -> Result<Chart<'a, 'b>> {
    Ok(ChartBuilder::on(area)
        .caption(caption, font(size))
        .margin(12)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x, y)?)
}

/// Draws the axes: titles (x, y), type sizes (tick labels, titles), and what `more` sets
/// beyond them (ticks, label formatters).
pub(super) fn axes<'a, 'm, 'b>(
    chart: &'m mut Chart<'a, 'b>,
    (x_desc, y_desc): (&str, &str),
    (labels, titles): (u32, u32),
    more: impl FnOnce(&mut MeshStyle<'a, 'm, RangedCoordf64, RangedCoordf64, SVGBackend<'b>>),
) -> Result<()> {
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(font(labels))
        .axis_desc_style(font(titles));
    more(&mut mesh);
    mesh.draw()?;
    Ok(())
}

/// A labelled line in colour `c` with a dot of `radius` at each point.
pub(super) fn dotted_line(
    chart: &mut Chart,
    points: &[(f64, f64)],
    c: RGBColor,
    radius: i32,
    label: String,
) -> Result<()> {
    chart
        .draw_series(LineSeries::new(points.to_vec(), c.stroke_width(2)))?
        .label(label)
        .legend(line_key(c));
    chart.draw_series(points.iter().map(|&p| Circle::new(p, radius, c.filled())))?;
    Ok(())
}
