//! The usage chart: answers per week as bars, the part that found no close match stacked on
//! top in another colour, as a PNG small enough for a Discord attachment (about 10 KB).
//!
//! plotters fills the shapes into an RGB buffer; the labels are drawn with ab_glyph in the
//! bundled DejaVu Sans (plotters' own text needs the system's fonts through font-kit, which a
//! fresh machine or a container may not have); png encodes the buffer.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use plotters::prelude::*;

/// DejaVu Sans (assets/fonts/, Bitstream Vera licence).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 400;

const ANSWERED: RGBColor = RGBColor(0x58, 0x65, 0xF2);
const NO_MATCH: RGBColor = RGBColor(0xED, 0xA2, 0x3C);
const INK: [u8; 3] = [0x2B, 0x2D, 0x31];
const GRID: RGBColor = RGBColor(0xE3, 0xE5, 0xE8);

/// One bar: a week's label and its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekBar {
    /// What is written under the bar, e.g. "Nov 2".
    pub label: String,
    /// Answers that found a close match.
    pub answered: u64,
    /// Answers that found no close match.
    pub no_match: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(String),
}

/// The chart of `bars` under `title`, as PNG bytes.
pub fn answers_per_week(title: &str, bars: &[WeekBar]) -> Result<Vec<u8>, ChartError> {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut rgb = vec![255u8; w * h * 3];
    let (left, right, top, bottom) = (64i32, 24i32, 56i32, 64i32);
    let plot_w = WIDTH as i32 - left - right;
    let plot_h = HEIGHT as i32 - top - bottom;
    let highest = bars
        .iter()
        .map(|b| b.answered + b.no_match)
        .max()
        .unwrap_or(0);
    let (step, ceiling) = axis(highest);
    let y_of = |v: u64| top + plot_h - ((v as f64 / ceiling as f64) * plot_h as f64).round() as i32;
    let slot = if bars.is_empty() {
        plot_w
    } else {
        plot_w / bars.len() as i32
    };
    let bar_w = (slot * 2 / 3).max(1);
    let mut labels: Vec<(String, i32, i32, f32, bool)> = Vec::new();
    {
        let area = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        let draw =
            |e: Result<(), DrawingAreaErrorKind<_>>| e.map_err(|e| ChartError::Draw(e.to_string()));
        let mut tick = 0;
        while tick <= ceiling {
            let y = y_of(tick);
            draw(area.draw(&PathElement::new(
                vec![(left, y), (left + plot_w, y)],
                GRID.stroke_width(1),
            )))?;
            labels.push((tick.to_string(), left - 8, y, 13.0, true));
            tick += step;
        }
        for (i, bar) in bars.iter().enumerate() {
            let x0 = left + i as i32 * slot + (slot - bar_w) / 2;
            let x1 = x0 + bar_w;
            let answered_top = y_of(bar.answered);
            let total_top = y_of(bar.answered + bar.no_match);
            if bar.answered > 0 {
                draw(area.draw(&Rectangle::new(
                    [(x0, answered_top), (x1, top + plot_h)],
                    ANSWERED.filled(),
                )))?;
            }
            if bar.no_match > 0 {
                draw(area.draw(&Rectangle::new(
                    [(x0, total_top), (x1, answered_top)],
                    NO_MATCH.filled(),
                )))?;
            }
            // Every label when they fit, else every other one.
            if bars.len() <= 13 || i % 2 == 0 {
                labels.push((
                    bar.label.clone(),
                    x0 + bar_w / 2,
                    top + plot_h + 18,
                    12.0,
                    false,
                ));
            }
        }
        draw(area.draw(&PathElement::new(
            vec![(left, top + plot_h), (left + plot_w, top + plot_h)],
            RGBColor(INK[0], INK[1], INK[2]).stroke_width(1),
        )))?;
        // The legend's colour swatches.
        let legend_y = HEIGHT as i32 - 22;
        draw(area.draw(&Rectangle::new(
            [(left, legend_y - 6), (left + 12, legend_y + 6)],
            ANSWERED.filled(),
        )))?;
        draw(area.draw(&Rectangle::new(
            [(left + 190, legend_y - 6), (left + 202, legend_y + 6)],
            NO_MATCH.filled(),
        )))?;
        area.present()
            .map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    let font = FontRef::try_from_slice(FONT).map_err(|e| ChartError::Draw(e.to_string()))?;
    text(&mut rgb, &font, title, left as f32, 30.0, 18.0, Align::Left);
    for (label, x, y, size, right_aligned) in labels {
        let align = if right_aligned {
            Align::Right
        } else {
            Align::Center
        };
        text(
            &mut rgb,
            &font,
            &label,
            x as f32,
            y as f32 + 4.0,
            size,
            align,
        );
    }
    let legend_y = HEIGHT as f32 - 17.0;
    text(
        &mut rgb,
        &font,
        "answered",
        left as f32 + 18.0,
        legend_y,
        13.0,
        Align::Left,
    );
    text(
        &mut rgb,
        &font,
        "no close match",
        left as f32 + 208.0,
        legend_y,
        13.0,
        Align::Left,
    );
    encode(&rgb)
}

/// A tick step and the axis' top for a highest value: 1, 2 or 5 times a power of ten, about
/// five ticks.
fn axis(highest: u64) -> (u64, u64) {
    if highest == 0 {
        return (1, 4);
    }
    let rough = (highest as f64 / 5.0).max(1.0);
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude) as u64;
    let step = step.max(1);
    (step, highest.div_ceil(step) * step)
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Center,
    Right,
}

/// Draws `s` with its baseline at `y`, blending the ink into the buffer.
fn text(rgb: &mut [u8], font: &FontRef<'_>, s: &str, x: f32, y: f32, size: f32, align: Align) {
    let scaled = font.as_scaled(PxScale::from(size));
    let width: f32 = s
        .chars()
        .map(|c| scaled.h_advance(scaled.glyph_id(c)))
        .sum();
    let mut pen = match align {
        Align::Left => x,
        Align::Center => x - width / 2.0,
        Align::Right => x - width,
    };
    for c in s.chars() {
        let id = scaled.glyph_id(c);
        let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, y));
        pen += scaled.h_advance(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i32 + gx as i32;
            let py = bounds.min.y as i32 + gy as i32;
            if px < 0 || py < 0 || px >= WIDTH as i32 || py >= HEIGHT as i32 {
                return;
            }
            let at = (py as usize * WIDTH as usize + px as usize) * 3;
            for (k, ink) in INK.iter().enumerate() {
                let old = f32::from(rgb[at + k]);
                rgb[at + k] = (old + (f32::from(*ink) - old) * coverage.min(1.0)).round() as u8;
            }
        });
    }
}

fn encode(rgb: &[u8]) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    writer
        .write_image_data(rgb)
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn a_chart_is_a_png_with_its_bars_in_their_colours() {
        let bars: Vec<WeekBar> = (0..5)
            .map(|i| WeekBar {
                label: format!("Nov {}", 2 + 7 * i),
                answered: 10 * (i + 1),
                no_match: 3,
            })
            .collect();
        let bytes = answers_per_week("Answers per week", &bars).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let (info, pixels) = decode(&bytes);
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let count = |c: RGBColor| {
            pixels
                .chunks_exact(3)
                .filter(|p| p == &[c.0, c.1, c.2])
                .count()
        };
        // Bars in both colours, more "answered" than "no match", and dark label ink.
        assert!(count(ANSWERED) > count(NO_MATCH) && count(NO_MATCH) > 0);
        assert!(pixels.chunks_exact(3).any(|p| p == INK));
    }

    #[test]
    fn an_empty_period_still_draws_a_chart() {
        let bytes = answers_per_week("No answers", &[]).unwrap();
        let (info, _) = decode(&bytes);
        assert_eq!(info.width, WIDTH);
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(axis(0), (1, 4));
        assert_eq!(axis(7), (2, 8));
        assert_eq!(axis(48), (10, 50));
        assert_eq!(axis(1234), (500, 1500));
    }
}
