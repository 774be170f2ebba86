//! Procedural "real" content: four classes of natural-looking scenes, described
//! resolution-independently so that the same scene can be rendered at any grid size.
//!
//! A scene is a set of parameters drawn once from an RNG (colours, shapes, and the
//! plane waves of coloured 1/f noise fields, positions in image-relative
//! coordinates `u, v ∈ [0, 1)`, frequencies in cycles per image). [`Scene::render`]
//! samples it at pixel centres `((x + ½)/n, (y + ½)/n)` of an `n × n` grid and
//! band-limits every periodic component with [`band_gain`], so a render at a reduced
//! resolution is the same scene without the detail that grid cannot hold — what a
//! generator's low-resolution stage produces before it is up-sampled.
//!
//! Noise fields are sums of plane waves whose amplitude spectrum falls as `1/f^α`
//! (natural images have α ≈ 1); frequencies are drawn by importance sampling so that
//! high frequencies get many waves (noise-like rather than a few gratings).

use std::f32::consts::{PI, TAU};

use rand::Rng;

/// Content classes, in folder order: the first `classes` of these are written.
pub(crate) const CLASSES: [ContentClass; 4] = [
    ContentClass::Landscape,
    ContentClass::Objects,
    ContentClass::Textures,
    ContentClass::Clouds,
];

/// Edge half-width, in pixels of the render grid, of every soft edge (anti-aliasing):
/// an edge is never sharper than the grid it is rendered on allows.
const EDGE_PX: f32 = 0.75;

/// Plane waves per noise field.
const WAVES_PER_FIELD: usize = 160;

/// Lowest frequency of a noise field, cycles per image.
const F_MIN: f32 = 1.0;

/// One of the four content "classes" (ForenSynths has four object classes; these are
/// four kinds of procedural scene).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentClass {
    /// Sky gradient, a noisy horizon ridge, textured ground, sometimes a sun.
    Landscape,
    /// Soft-edged, shaded ellipses and rectangles on a gradient background.
    Objects,
    /// Warped gratings between two colours (wood, fabric, ripples) plus grain.
    Textures,
    /// Coloured 1/f noise over a gradient (clouds, foliage, rock at a distance).
    Clouds,
}

impl ContentClass {
    /// Folder name of the class.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ContentClass::Landscape => "landscape",
            ContentClass::Objects => "objects",
            ContentClass::Textures => "textures",
            ContentClass::Clouds => "clouds",
        }
    }
}

/// A square 3-channel float image, planar `[c][y][x]`, values nominally in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Planes {
    /// Side length in pixels.
    pub n: usize,
    /// `3 · n · n` values, channel-major.
    pub data: Vec<f32>,
}

impl Planes {
    /// A black image.
    pub(crate) fn zeros(n: usize) -> Planes {
        Planes {
            n,
            data: vec![0.0; 3 * n * n],
        }
    }

    /// One channel, row-major.
    pub(crate) fn plane(&self, c: usize) -> &[f32] {
        &self.data[c * self.n * self.n..(c + 1) * self.n * self.n]
    }

    /// One channel, row-major, mutable.
    pub(crate) fn plane_mut(&mut self, c: usize) -> &mut [f32] {
        let nn = self.n * self.n;
        &mut self.data[c * nn..(c + 1) * nn]
    }
}

/// Gain of a component of frequency `f` (cycles per image) rendered on an `n`-pixel
/// grid: 1 up to 0.4·n, a raised cosine down to 0 at the Nyquist frequency n/2.
pub(crate) fn band_gain(f: f32, n: usize) -> f32 {
    let pass = 0.4 * n as f32;
    let stop = 0.5 * n as f32;
    if f <= pass {
        1.0
    } else if f >= stop {
        0.0
    } else {
        0.5 * (1.0 + (PI * (f - pass) / (stop - pass)).cos())
    }
}

/// Standard normal variate (Box–Muller; `rand_distr` is not a dependency).
pub(crate) fn gauss<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    let u1: f64 = rng.gen();
    let u2: f64 = rng.gen();
    ((-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.gen::<f32>()
}

fn log_uniform<R: Rng + ?Sized>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    lo * (hi / lo).powf(rng.gen::<f32>())
}

/// A colour from hue, saturation and value ranges (HSV → RGB).
fn colour<R: Rng + ?Sized>(rng: &mut R, sat: (f32, f32), val: (f32, f32)) -> [f32; 3] {
    hsv(
        rng.gen::<f32>(),
        uniform(rng, sat.0, sat.1),
        uniform(rng, val.0, val.1),
    )
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = (h.fract() * 6.0).min(5.999_999);
    let sector = h6.floor();
    let f = h6 - sector;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match sector as u32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Pixel-centre coordinates of an `n`-pixel grid in `[0, 1)`.
fn centres(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect()
}

/// Statistics of a coloured 1/f noise field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NoiseSpec {
    /// Amplitude-spectrum exponent α: amplitude ∝ 1/f^α.
    pub alpha: f32,
    /// Standard deviation of the field over the full band (per channel, before colour).
    pub std: f32,
    /// Spread of the per-wave channel gains around 1 (0 = grey noise).
    pub colourfulness: f32,
}

#[derive(Clone, Debug)]
struct Wave {
    /// Cycles per image.
    freq: f32,
    /// 2π·(fx, fy).
    kx: f32,
    ky: f32,
    phase: f32,
    amp: [f32; 3],
}

/// A coloured noise field: a sum of plane waves with a 1/f^α amplitude spectrum.
#[derive(Clone, Debug)]
pub(crate) struct NoiseField {
    waves: Vec<Wave>,
}

impl NoiseField {
    /// Draws a field with spectrum `spec` over frequencies `[F_MIN, f_max]`.
    ///
    /// Frequencies are importance-sampled from an even mixture of a log-uniform and an
    /// area-uniform density `p(f)`; each wave's power is `S(f)/(K·p(f))` with the
    /// annular power density `S(f) ∝ f·f^(−2α)`, then the total variance is set to
    /// `spec.std²`.
    pub(crate) fn sample<R: Rng + ?Sized>(rng: &mut R, spec: NoiseSpec, f_max: f32) -> NoiseField {
        let f_max = f_max.max(F_MIN * 1.5);
        let log_span = (f_max / F_MIN).ln();
        let area_span = f_max * f_max - F_MIN * F_MIN;
        let k = WAVES_PER_FIELD as f32;
        let mut waves = Vec::with_capacity(WAVES_PER_FIELD);
        let mut variance = 0.0f32;
        for i in 0..WAVES_PER_FIELD {
            let u: f32 = rng.gen();
            let freq = if i % 2 == 0 {
                F_MIN * (f_max / F_MIN).powf(u)
            } else {
                (F_MIN * F_MIN + u * area_span).sqrt()
            };
            let density = 0.5 / (freq * log_span) + freq / area_span;
            let power = freq.powf(1.0 - 2.0 * spec.alpha) / (k * density);
            let a = (2.0 * power).sqrt();
            variance += 0.5 * a * a;
            let theta = rng.gen::<f32>() * PI;
            let phase = rng.gen::<f32>() * TAU;
            let amp = [(); 3].map(|()| a * (1.0 + spec.colourfulness * gauss(rng)));
            waves.push(Wave {
                freq,
                kx: TAU * freq * theta.cos(),
                ky: TAU * freq * theta.sin(),
                phase,
                amp,
            });
        }
        let scale = spec.std / variance.sqrt().max(1e-12);
        for g in waves.iter_mut().flat_map(|w| &mut w.amp) {
            *g *= scale;
        }
        NoiseField { waves }
    }

    /// Adds the field, each wave weighted by `gain(freq)`, onto `img`.
    pub(crate) fn add_to(&self, img: &mut Planes, gain: impl Fn(f32) -> f32) {
        let n = img.n;
        let xs = centres(n);
        let (mut cx, mut sx, mut cy, mut sy) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let nn = n * n;
        for w in &self.waves {
            let g = gain(w.freq);
            if g <= 1e-6 {
                continue;
            }
            for i in 0..n {
                let (s, c) = (w.kx * xs[i] + w.phase).sin_cos();
                cx[i] = c;
                sx[i] = s;
                let (s, c) = (w.ky * xs[i]).sin_cos();
                cy[i] = c;
                sy[i] = s;
            }
            let a = [w.amp[0] * g, w.amp[1] * g, w.amp[2] * g];
            let (r, rest) = img.data.split_at_mut(nn);
            let (gr, b) = rest.split_at_mut(nn);
            for y in 0..n {
                let row = y * n;
                for x in 0..n {
                    // cos(kx·u + φ + ky·v)
                    let v = cx[x] * cy[y] - sx[x] * sy[y];
                    r[row + x] += a[0] * v;
                    gr[row + x] += a[1] * v;
                    b[row + x] += a[2] * v;
                }
            }
        }
    }

    /// The field alone as a scalar map (channel gains averaged), band-limited for `n`.
    fn render_scalar(&self, n: usize) -> Vec<f32> {
        let mut img = Planes::zeros(n);
        self.add_to(&mut img, |f| band_gain(f, n));
        let nn = n * n;
        (0..nn)
            .map(|i| (img.data[i] + img.data[nn + i] + img.data[2 * nn + i]) / 3.0)
            .collect()
    }
}

/// A 1-D sum of sines along `u` (a horizon ridge), 1/f amplitudes.
#[derive(Clone, Debug)]
pub(crate) struct Ridge {
    waves: Vec<(f32, f32, f32)>, // (cycles per image, amplitude, phase)
}

impl Ridge {
    fn sample<R: Rng + ?Sized>(rng: &mut R, std: f32, f_max: f32) -> Ridge {
        let mut waves: Vec<(f32, f32, f32)> = (0..24)
            .map(|_| {
                let f = log_uniform(rng, 0.5, f_max);
                (f, 1.0 / f, rng.gen::<f32>() * TAU)
            })
            .collect();
        let var: f32 = waves.iter().map(|w| 0.5 * w.1 * w.1).sum();
        let s = std / var.sqrt();
        for w in &mut waves {
            w.1 *= s;
        }
        Ridge { waves }
    }

    fn eval(&self, u: f32, n: usize) -> f32 {
        self.waves
            .iter()
            .map(|&(f, a, p)| band_gain(f, n) * a * (TAU * f * u + p).sin())
            .sum()
    }
}

/// A linear colour gradient across the image.
#[derive(Clone, Debug)]
pub(crate) struct Gradient {
    from: [f32; 3],
    to: [f32; 3],
    dir: (f32, f32),
}

impl Gradient {
    fn sample<R: Rng + ?Sized>(rng: &mut R, sat: (f32, f32), val: (f32, f32)) -> Gradient {
        let t = rng.gen::<f32>() * TAU;
        Gradient {
            from: colour(rng, sat, val),
            to: colour(rng, sat, val),
            dir: (t.cos(), t.sin()),
        }
    }

    fn at(&self, u: f32, v: f32) -> [f32; 3] {
        // Projection of (u, v) − centre onto the direction, mapped to [0, 1].
        let t = ((u - 0.5) * self.dir.0 + (v - 0.5) * self.dir.1) / std::f32::consts::SQRT_2 + 0.5;
        mix(self.from, self.to, t.clamp(0.0, 1.0))
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum ShapeKind {
    Ellipse,
    Rectangle,
}

/// A soft-edged, shaded shape.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    kind: ShapeKind,
    centre: (f32, f32),
    half: (f32, f32),
    rot: (f32, f32), // (cos, sin)
    colour: [f32; 3],
    /// Brightness change across the shape along `rot` (simple shading).
    shading: f32,
    /// Extra edge softness (defocus), image-relative.
    blur: f32,
    opacity: f32,
}

impl Shape {
    fn sample<R: Rng + ?Sized>(rng: &mut R) -> Shape {
        let t = rng.gen::<f32>() * PI;
        Shape {
            kind: if rng.gen::<bool>() {
                ShapeKind::Ellipse
            } else {
                ShapeKind::Rectangle
            },
            centre: (rng.gen(), rng.gen()),
            half: (log_uniform(rng, 0.05, 0.3), log_uniform(rng, 0.05, 0.3)),
            rot: (t.cos(), t.sin()),
            colour: colour(rng, (0.1, 0.8), (0.15, 0.95)),
            shading: uniform(rng, -0.25, 0.25),
            blur: if rng.gen::<f32>() < 0.3 {
                uniform(rng, 0.0, 0.03)
            } else {
                0.0
            },
            opacity: uniform(rng, 0.7, 1.0),
        }
    }

    /// Signed distance (image-relative units, negative inside) and the local
    /// coordinate along the shading axis in [−1, 1].
    fn distance(&self, u: f32, v: f32) -> (f32, f32) {
        let (dx, dy) = (u - self.centre.0, v - self.centre.1);
        let px = dx * self.rot.0 + dy * self.rot.1;
        let py = -dx * self.rot.1 + dy * self.rot.0;
        let d = match self.kind {
            ShapeKind::Ellipse => {
                let (qx, qy) = (px / self.half.0, py / self.half.1);
                ((qx * qx + qy * qy).sqrt() - 1.0) * self.half.0.min(self.half.1)
            }
            ShapeKind::Rectangle => {
                let (qx, qy) = (px.abs() - self.half.0, py.abs() - self.half.1);
                let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
                outside + qx.max(qy).min(0.0)
            }
        };
        (d, (px / self.half.0).clamp(-1.0, 1.0))
    }
}

/// A warped grating `sin(2π·f·(d·p) + warp(p) + φ)`.
#[derive(Clone, Debug)]
pub(crate) struct Grating {
    freq: f32,
    dir: (f32, f32),
    phase: f32,
    weight: f32,
    /// Radians of phase warp per unit of the (unit-std) warp field.
    warp: f32,
}

/// Low frequency limit of warp fields (cycles per image): they bend, not texture.
const WARP_F_MAX: f32 = 3.0;

/// The parameters of one scene; see [`ContentClass`].
#[derive(Clone, Debug)]
pub(crate) enum Scene {
    /// See [`ContentClass::Landscape`].
    Landscape {
        sky: Gradient,
        horizon: f32,
        ridge: Ridge,
        ground_far: [f32; 3],
        ground_near: [f32; 3],
        ground_tex: NoiseField,
        ground_spec: NoiseSpec,
        sky_tex: NoiseField,
        sun: Option<Shape>,
    },
    /// See [`ContentClass::Objects`].
    Objects {
        background: Gradient,
        shapes: Vec<Shape>,
        tex: NoiseField,
        spec: NoiseSpec,
    },
    /// See [`ContentClass::Textures`].
    Textures {
        dark: [f32; 3],
        light: [f32; 3],
        gratings: Vec<Grating>,
        warp: NoiseField,
        tex: NoiseField,
        spec: NoiseSpec,
    },
    /// See [`ContentClass::Clouds`].
    Clouds {
        background: Gradient,
        field: NoiseField,
        spec: NoiseSpec,
    },
}

impl Scene {
    /// Draws a scene of class `class` for images of `size` pixels (the full
    /// resolution: noise fields reach its Nyquist frequency).
    pub(crate) fn sample<R: Rng + ?Sized>(rng: &mut R, class: ContentClass, size: usize) -> Scene {
        let nyquist = size as f32 / 2.0;
        match class {
            ContentClass::Landscape => {
                let ground_spec = NoiseSpec {
                    alpha: uniform(rng, 0.7, 1.2),
                    std: uniform(rng, 0.05, 0.12),
                    colourfulness: uniform(rng, 0.1, 0.4),
                };
                let sky_spec = NoiseSpec {
                    alpha: 1.6,
                    std: uniform(rng, 0.01, 0.04),
                    colourfulness: 0.1,
                };
                let sun = if rng.gen::<f32>() < 0.4 {
                    let r = uniform(rng, 0.03, 0.08);
                    Some(Shape {
                        kind: ShapeKind::Ellipse,
                        centre: (rng.gen(), uniform(rng, 0.05, 0.3)),
                        half: (r, r),
                        rot: (1.0, 0.0),
                        colour: colour(rng, (0.0, 0.3), (0.85, 1.0)),
                        shading: 0.0,
                        blur: uniform(rng, 0.0, 0.02),
                        opacity: uniform(rng, 0.6, 1.0),
                    })
                } else {
                    None
                };
                let sky = Gradient::sample(rng, (0.1, 0.6), (0.5, 1.0));
                let horizon = uniform(rng, 0.3, 0.7);
                let ridge_std = uniform(rng, 0.03, 0.1);
                Scene::Landscape {
                    sky,
                    horizon,
                    ridge: Ridge::sample(rng, ridge_std, nyquist),
                    ground_far: colour(rng, (0.2, 0.7), (0.3, 0.8)),
                    ground_near: colour(rng, (0.2, 0.8), (0.1, 0.6)),
                    ground_tex: NoiseField::sample(rng, ground_spec, nyquist),
                    ground_spec,
                    sky_tex: NoiseField::sample(rng, sky_spec, nyquist),
                    sun,
                }
            }
            ContentClass::Objects => {
                let spec = NoiseSpec {
                    alpha: uniform(rng, 0.8, 1.3),
                    std: uniform(rng, 0.03, 0.08),
                    colourfulness: uniform(rng, 0.0, 0.3),
                };
                let count = rng.gen_range(3..=8);
                Scene::Objects {
                    background: Gradient::sample(rng, (0.0, 0.5), (0.2, 0.9)),
                    shapes: (0..count).map(|_| Shape::sample(rng)).collect(),
                    tex: NoiseField::sample(rng, spec, nyquist),
                    spec,
                }
            }
            ContentClass::Textures => {
                let spec = NoiseSpec {
                    alpha: uniform(rng, 0.7, 1.2),
                    std: uniform(rng, 0.03, 0.08),
                    colourfulness: uniform(rng, 0.0, 0.3),
                };
                let count = rng.gen_range(1..=3);
                let gratings = (0..count)
                    .map(|_| {
                        let t = rng.gen::<f32>() * PI;
                        Grating {
                            freq: log_uniform(rng, 3.0, (size as f32 / 4.0).max(4.0)),
                            dir: (t.cos(), t.sin()),
                            phase: rng.gen::<f32>() * TAU,
                            weight: uniform(rng, 0.3, 1.0),
                            warp: uniform(rng, 0.0, 2.5),
                        }
                    })
                    .collect();
                let warp_spec = NoiseSpec {
                    alpha: 1.0,
                    std: 1.0,
                    colourfulness: 0.0,
                };
                Scene::Textures {
                    dark: colour(rng, (0.1, 0.7), (0.1, 0.5)),
                    light: colour(rng, (0.1, 0.7), (0.5, 1.0)),
                    gratings,
                    warp: NoiseField::sample(rng, warp_spec, WARP_F_MAX),
                    tex: NoiseField::sample(rng, spec, nyquist),
                    spec,
                }
            }
            ContentClass::Clouds => {
                let spec = NoiseSpec {
                    alpha: uniform(rng, 0.8, 1.4),
                    std: uniform(rng, 0.1, 0.2),
                    colourfulness: uniform(rng, 0.2, 0.7),
                };
                Scene::Clouds {
                    background: Gradient::sample(rng, (0.1, 0.6), (0.3, 0.8)),
                    field: NoiseField::sample(rng, spec, nyquist),
                    spec,
                }
            }
        }
    }

    /// The statistics of the scene's fine texture: fresh detail added to a fake follows
    /// them, so its high band matches what a real image of this scene would hold.
    pub(crate) fn detail_spec(&self) -> NoiseSpec {
        match self {
            Scene::Landscape { ground_spec, .. } => *ground_spec,
            Scene::Objects { spec, .. }
            | Scene::Textures { spec, .. }
            | Scene::Clouds { spec, .. } => *spec,
        }
    }

    /// Renders the scene on an `n × n` grid, band-limited for that grid.
    pub(crate) fn render(&self, n: usize) -> Planes {
        let xs = centres(n);
        let nn = n * n;
        let edge = EDGE_PX / n as f32;
        let mut img = Planes::zeros(n);
        let put = |img: &mut Planes, i: usize, c: [f32; 3]| {
            img.data[i] = c[0];
            img.data[nn + i] = c[1];
            img.data[2 * nn + i] = c[2];
        };
        match self {
            Scene::Landscape {
                sky,
                horizon,
                ridge,
                ground_far,
                ground_near,
                ground_tex,
                sky_tex,
                sun,
                ..
            } => {
                let mut ground = Planes::zeros(n);
                ground_tex.add_to(&mut ground, |f| band_gain(f, n));
                let mut clouds = Planes::zeros(n);
                sky_tex.add_to(&mut clouds, |f| band_gain(f, n));
                for (x, &u) in xs.iter().enumerate() {
                    let h = horizon + ridge.eval(u, n);
                    for (y, &v) in xs.iter().enumerate() {
                        let i = y * n + x;
                        let mut s = sky.at(u, v);
                        for (c, sc) in s.iter_mut().enumerate() {
                            *sc += clouds.data[c * nn + i];
                        }
                        if let Some(sun) = sun {
                            let (d, _) = sun.distance(u, v);
                            let w = edge.max(sun.blur);
                            let a = sun.opacity * smoothstep(w, -w, d);
                            s = mix(s, sun.colour, a);
                        }
                        // Ground darkens/changes towards the viewer.
                        let depth = ((v - h) / (1.0 - h).max(0.05)).clamp(0.0, 1.0);
                        let mut g = mix(*ground_far, *ground_near, depth);
                        for (c, gc) in g.iter_mut().enumerate() {
                            *gc += ground.data[c * nn + i];
                        }
                        let a = smoothstep(-edge, edge, v - h);
                        put(&mut img, i, mix(s, g, a));
                    }
                }
            }
            Scene::Objects {
                background,
                shapes,
                tex,
                ..
            } => {
                for (y, &v) in xs.iter().enumerate() {
                    for (x, &u) in xs.iter().enumerate() {
                        let mut c = background.at(u, v);
                        for s in shapes {
                            let (d, t) = s.distance(u, v);
                            let w = edge.max(s.blur);
                            if d > w {
                                continue;
                            }
                            let a = s.opacity * smoothstep(w, -w, d);
                            let shade = 1.0 + s.shading * t;
                            let sc = [
                                s.colour[0] * shade,
                                s.colour[1] * shade,
                                s.colour[2] * shade,
                            ];
                            c = mix(c, sc, a);
                        }
                        put(&mut img, y * n + x, c);
                    }
                }
                tex.add_to(&mut img, |f| band_gain(f, n));
            }
            Scene::Textures {
                dark,
                light,
                gratings,
                warp,
                tex,
                ..
            } => {
                let warp_map = warp.render_scalar(n);
                let total: f32 = gratings.iter().map(|g| g.weight).sum();
                for (y, &v) in xs.iter().enumerate() {
                    for (x, &u) in xs.iter().enumerate() {
                        let i = y * n + x;
                        let mut t = 0.0;
                        for g in gratings {
                            // Warping raises the local frequency; keep a margin for it.
                            let gain = band_gain(g.freq * (1.0 + 0.25 * g.warp), n);
                            if gain > 0.0 {
                                let arg = TAU * g.freq * (u * g.dir.0 + v * g.dir.1)
                                    + g.warp * warp_map[i]
                                    + g.phase;
                                t += gain * g.weight * arg.sin();
                            }
                        }
                        put(&mut img, i, mix(*dark, *light, 0.5 + 0.5 * t / total));
                    }
                }
                tex.add_to(&mut img, |f| band_gain(f, n));
            }
            Scene::Clouds {
                background, field, ..
            } => {
                for (y, &v) in xs.iter().enumerate() {
                    for (x, &u) in xs.iter().enumerate() {
                        put(&mut img, y * n + x, background.at(u, v));
                    }
                }
                field.add_to(&mut img, |f| band_gain(f, n));
            }
        }
        img
    }
}
