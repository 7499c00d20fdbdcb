//! Canvas geometry (§8): rectangles, a stroke's bounding box read from its JSON text, and the
//! audience of a message by what it touches. A leaf module: the wire types (`protocol`) and the
//! canvas engine (`ot::canvas`) both use it.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// An axis-aligned rectangle, closed on every side: rectangles that touch intersect (§8).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl Rect {
    /// `None` unless every bound is finite and the rectangle is not inverted.
    pub fn new(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Option<Rect> {
        let finite = [min_x, min_y, max_x, max_y].iter().all(|v| v.is_finite());
        (finite && min_x <= max_x && min_y <= max_y).then_some(Rect { min_x, min_y, max_x, max_y })
    }

    /// A viewport `x, y, width, height`; sizes must be finite and not negative.
    pub fn from_view(x: f64, y: f64, width: f64, height: f64) -> Option<Rect> {
        if !(width >= 0.0 && height >= 0.0) {
            return None;
        }
        Rect::new(x, y, x + width, y + height)
    }

    /// They share at least one point (touching edges and corners count).
    pub fn intersects(&self, o: &Rect) -> bool {
        self.min_x <= o.max_x && o.min_x <= self.max_x && self.min_y <= o.max_y && o.min_y <= self.max_y
    }

    pub fn contains(&self, o: &Rect) -> bool {
        self.min_x <= o.min_x && o.max_x <= self.max_x && self.min_y <= o.min_y && o.max_y <= self.max_y
    }
}

/// Whether a stroke with box `bbox` (None: no box) is in a view (None: everything).
pub fn in_view(bbox: Option<&Rect>, view: Option<&Rect>) -> bool {
    match (bbox, view) {
        (Some(b), Some(v)) => b.intersects(v),
        _ => true,
    }
}

/// Who a message is for, by viewport (§8) or batching (§9). Sockets without a viewport get
/// everything that is not `Unbatched`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Reach {
    /// Every socket (and every message that is not about strokes).
    #[default]
    All,
    /// Sockets whose viewport intersects any of these boxes: the boxes of the strokes an
    /// operation touched, before and after it.
    Touching(Vec<Rect>),
    /// Sockets without `?batch=1` only: a post's counter action (like, repost, save and their
    /// undoing), which a batch socket learns from the coalesced `engagement_update` (§9) — so a
    /// crowd on a viral post costs one frame per socket per 100 ms, not one per like.
    Unbatched,
}

impl Reach {
    pub fn reaches(&self, view: Option<&Rect>) -> bool {
        match (self, view) {
            (Reach::Touching(boxes), Some(v)) => boxes.iter().any(|b| b.intersects(v)),
            _ => true,
        }
    }
}

/// The bounding box of a stroke's `data` JSON (§8): the extent of `data.points`, given as
/// `[[x, y], …]` or `[{"x", "y"}, …]`, widened on every side by `data.width` / 2. `None` (no box,
/// always in view) when there are no points or any point is not a pair of numbers: a stroke the
/// server cannot place is never hidden. Reads the text without building a `Value` tree.
pub fn stroke_bbox(data_json: &str) -> Option<Rect> {
    let shape: Shape = serde_json::from_str(data_json).ok()?;
    let b = shape.points?.0?;
    let half = match shape.width {
        Some(w) if w.is_finite() && w > 0.0 => w / 2.0,
        _ => 0.0,
    };
    Rect::new(b.min_x - half, b.min_y - half, b.max_x + half, b.max_y + half)
}

/// The two fields of stroke data that place it; everything else is skipped.
struct Shape {
    points: Option<Extent>,
    width: Option<f64>,
}

/// The extent of a points array: `None` inside when it is empty or holds a malformed point.
struct Extent(Option<Rect>);

/// A point, or `None` when the element is not one.
struct Point(Option<(f64, f64)>);

/// Any JSON value, read as a number when it is one.
struct MaybeNumber(Option<f64>);

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("stroke data")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Shape, A::Error> {
                let mut shape = Shape { points: None, width: None };
                while let Some(key) = m.next_key::<Key>()? {
                    match key {
                        Key::Points => shape.points = Some(m.next_value()?),
                        Key::Width => shape.width = m.next_value::<MaybeNumber>()?.0,
                        Key::X | Key::Y | Key::Other => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(shape)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Extent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Extent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of points")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Extent, A::Error> {
                let mut acc: Option<Rect> = None;
                let mut malformed = false;
                while let Some(Point(p)) = s.next_element()? {
                    match p {
                        Some((x, y)) => {
                            let r = acc.get_or_insert(Rect { min_x: x, min_y: y, max_x: x, max_y: y });
                            r.min_x = r.min_x.min(x);
                            r.min_y = r.min_y.min(y);
                            r.max_x = r.max_x.max(x);
                            r.max_y = r.max_y.max(y);
                        }
                        None => malformed = true,
                    }
                }
                Ok(Extent(if malformed { None } else { acc }))
            }
            // `points` that is not an array places nothing.
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Extent, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Extent(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Extent, E> {
                Ok(Extent(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Extent, E> {
                Ok(Extent(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Extent, E> {
                Ok(Extent(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Extent, E> {
                Ok(Extent(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Extent, E> {
                Ok(Extent(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Extent, E> {
                Ok(Extent(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Point;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a point")
            }
            /// `[x, y, …]`: extra members (pressure, time) are allowed and skipped.
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Point, A::Error> {
                let x = s.next_element::<MaybeNumber>()?.and_then(|n| n.0);
                let y = s.next_element::<MaybeNumber>()?.and_then(|n| n.0);
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Point(x.zip(y)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Point, A::Error> {
                let (mut x, mut y) = (None, None);
                while let Some(key) = m.next_key::<Key>()? {
                    match key {
                        Key::X => x = m.next_value::<MaybeNumber>()?.0,
                        Key::Y => y = m.next_value::<MaybeNumber>()?.0,
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Point(x.zip(y)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Point, E> {
                Ok(Point(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Point, E> {
                Ok(Point(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Point, E> {
                Ok(Point(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Point, E> {
                Ok(Point(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Point, E> {
                Ok(Point(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Point, E> {
                Ok(Point(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for MaybeNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(NumberVisitor)?;
        Ok(MaybeNumber(v.filter(|f| f.is_finite())))
    }
}

struct NumberVisitor;

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<f64>, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<f64>, E> {
        Ok(Some(v as f64))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<f64>, E> {
        Ok(Some(v as f64))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Option<f64>, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Option<f64>, A::Error> {
        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// Object keys that matter here; any other key is `Other`. Escaped keys arrive owned.
enum Key {
    Points,
    Width,
    X,
    Y,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
                Ok(match k {
                    "points" => Key::Points,
                    "width" => Key::Width,
                    "x" => Key::X,
                    "y" => Key::Y,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: f64, b: f64, c: f64, d: f64) -> Option<Rect> {
        Rect::new(a, b, c, d)
    }

    #[test]
    fn boxes_from_both_point_forms_widened_by_half_the_width() {
        assert_eq!(stroke_bbox(r#"{"points":[[1,2],[5,-3]]}"#), r(1.0, -3.0, 5.0, 2.0));
        assert_eq!(stroke_bbox(r#"{"points":[{"x":1,"y":2,"p":0.5},{"y":9,"x":-1}],"width":4}"#), r(-3.0, 0.0, 3.0, 11.0));
        assert_eq!(stroke_bbox(r#"{"color":"red","points":[[0.5,0.25,0.9]],"width":"thick"}"#), r(0.5, 0.25, 0.5, 0.25));
        assert_eq!(stroke_bbox(r#"{"po\u0069nts":[[1,1]]}"#), r(1.0, 1.0, 1.0, 1.0), "escaped keys are keys too");
    }

    #[test]
    fn strokes_that_cannot_be_placed_have_no_box() {
        for data in [r#"{}"#, r#"{"points":[]}"#, r#"{"points":[[1,2],["a",3]]}"#, r#"{"points":[[1]]}"#, r#"{"points":{"x":1}}"#, "1", r#""text""#, "[[1,2]]", r#"{"points":[[1,2],null]}"#, r#"{"points":[[1e400,1]]}"#] {
            assert_eq!(stroke_bbox(data), None, "{data}");
        }
    }

    #[test]
    fn touching_edges_and_corners_intersect() {
        let a = Rect { min_x: 0.0, min_y: 0.0, max_x: 10.0, max_y: 10.0 };
        assert!(a.intersects(&Rect { min_x: 10.0, min_y: 10.0, max_x: 20.0, max_y: 20.0 }));
        assert!(a.intersects(&Rect { min_x: -5.0, min_y: 10.0, max_x: 0.0, max_y: 12.0 }));
        assert!(!a.intersects(&Rect { min_x: 10.000001, min_y: 0.0, max_x: 20.0, max_y: 1.0 }));
        assert_eq!(Rect::from_view(1.0, 2.0, -1.0, 3.0), None);
        assert_eq!(Rect::from_view(f64::MAX, 0.0, f64::MAX, 1.0), None, "overflow to infinity");
        assert_eq!(Rect::from_view(1.0, 2.0, 0.0, 0.0), r(1.0, 2.0, 1.0, 2.0));
    }
}
