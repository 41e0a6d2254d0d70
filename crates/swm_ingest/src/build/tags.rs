//! Parsing OSM tag values: lengths, speeds, levels, directions.

/// A length in metres from an OSM value: `12`, `12.5 m`, `12m`, `40'`, `40 ft`, `3'6"`.
pub fn parse_length_m(v: &str) -> Option<f64> {
    let s = v.trim().replace(',', ".");
    if s.is_empty() {
        return None;
    }
    let x = if let Some(num) = s.strip_suffix("ft").or_else(|| s.strip_suffix("feet")) {
        num.trim().parse::<f64>().ok()? * 0.3048
    } else if let Some((ft, rest)) = s.split_once('\'') {
        let inches = rest.trim().trim_end_matches('"').trim();
        let inches = if inches.is_empty() { 0.0 } else { inches.parse::<f64>().ok()? };
        ft.trim().parse::<f64>().ok()? * 0.3048 + inches * 0.0254
    } else if let Some(num) = s.strip_suffix("km") {
        num.trim().parse::<f64>().ok()? * 1000.0
    } else if let Some(num) = s.strip_suffix('m') {
        num.trim().parse::<f64>().ok()?
    } else {
        s.parse::<f64>().ok()?
    };
    (x.is_finite() && (0.0..10_000.0).contains(&x)).then_some(x)
}

/// A level count: `12`, `12.5`; `None` for negative or absurd values.
pub fn parse_levels(v: &str) -> Option<f64> {
    let x: f64 = v.trim().replace(',', ".").parse().ok()?;
    (x.is_finite() && (0.0..300.0).contains(&x)).then_some(x)
}

/// A speed in m/s from `maxspeed`: `50`, `50 km/h`, `30 mph`, `KR:urban`, `KR:rural`, `KR:motorway`.
pub fn parse_speed_mps(v: &str) -> Option<f64> {
    let s = v.trim();
    let kmh = match s {
        "KR:urban" => 50.0,
        "KR:rural" => 60.0,
        "KR:motorway" => 100.0,
        "walk" => 5.0,
        _ => {
            if let Some(num) = s.strip_suffix("mph") {
                num.trim().parse::<f64>().ok()? * 1.609_344
            } else {
                let num = s.strip_suffix("km/h").or_else(|| s.strip_suffix("kmh")).unwrap_or(s);
                num.trim().parse::<f64>().ok()?
            }
        }
    };
    (kmh.is_finite() && kmh > 0.0 && kmh < 300.0).then_some(kmh / 3.6)
}

/// A direction: degrees clockwise from north (`45`) or a compass point (`NE`), returned
/// as radians counter-clockwise from east (the twin's convention).
pub fn parse_direction_rad(v: &str) -> Option<f64> {
    const POINTS: [&str; 16] =
        ["N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"];
    let s = v.trim();
    let deg = match POINTS.iter().position(|p| p.eq_ignore_ascii_case(s)) {
        Some(i) => i as f64 * 22.5,
        None => s.parse::<f64>().ok().filter(|d| d.is_finite())?,
    };
    Some((90.0 - deg).to_radians().rem_euclid(std::f64::consts::TAU))
}

/// `yes`, `true`, `1` are true.
pub fn is_yes(v: Option<&str>) -> bool {
    matches!(v, Some("yes" | "true" | "1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(parse_length_m("12"), Some(12.0));
        assert_eq!(parse_length_m("12.5 m"), Some(12.5));
        assert_eq!(parse_length_m("322m"), Some(322.0));
        assert!((parse_length_m("10'").unwrap() - 3.048).abs() < 1e-9);
        assert!((parse_length_m("3'6\"").unwrap() - 1.0668).abs() < 1e-9);
        assert_eq!(parse_length_m("tall"), None);
        assert_eq!(parse_length_m("-3"), None);
    }

    #[test]
    fn speeds() {
        assert!((parse_speed_mps("50").unwrap() - 13.888_888).abs() < 1e-5);
        assert!((parse_speed_mps("KR:urban").unwrap() - 13.888_888).abs() < 1e-5);
        assert!((parse_speed_mps("30 mph").unwrap() - 13.4112).abs() < 1e-4);
        assert_eq!(parse_speed_mps("none"), None);
    }

    #[test]
    fn directions() {
        assert!((parse_direction_rad("E").unwrap()).abs() < 1e-12);
        assert!((parse_direction_rad("0").unwrap() - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        assert!((parse_direction_rad("180").unwrap() - 1.5 * std::f64::consts::PI).abs() < 1e-12);
    }
}
