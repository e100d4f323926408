//! UMAP's curve parameters: fit 1 / (1 + a·x^(2b)) to the target
//! membership (1 below min_dist, exp(−(x − min_dist)/spread) above) on
//! 300 points of [0, 3·spread], by least squares from (a, b) = (1, 1) —
//! umap-learn does the same with scipy's curve_fit (Levenberg–Marquardt).

/// (a, b) for `spread` and `min_dist`.
pub fn find_ab_params(spread: f64, min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| i as f64 * spread * 3.0 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let sse = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| {
                let r = curve(x, a, b) - y;
                r * r
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 1.0f64);
    let mut lambda = 1e-3;
    let mut cost = sse(a, b);
    for _ in 0..500 {
        // Normal equations JᵀJ δ = −Jᵀr with analytic derivatives.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            if x <= 0.0 {
                continue; // f = 1 at x = 0 whatever a and b
            }
            let p = x.powf(2.0 * b);
            let den = 1.0 + a * p;
            let f = 1.0 / den;
            let da = -p / (den * den);
            let db = -a * p * 2.0 * x.ln() / (den * den);
            let r = f - y;
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let mut improved = false;
        for _ in 0..30 {
            let (m11, m22) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
            let det = m11 * m22 - jab * jab;
            if det.abs() < 1e-300 {
                lambda *= 10.0;
                continue;
            }
            let da = -(m22 * ga - jab * gb) / det;
            let db = -(m11 * gb - jab * ga) / det;
            let (na, nb) = (a + da, b + db);
            let c = sse(na, nb);
            if c.is_finite() && c < cost {
                let rel = (cost - c) / cost.max(1e-300);
                a = na;
                b = nb;
                cost = c;
                lambda = (lambda / 10.0).max(1e-12);
                improved = rel > 1e-15;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    (a, b)
}

fn curve(x: f64, a: f64, b: f64) -> f64 {
    1.0 / (1.0 + a * x.powf(2.0 * b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_umap_learn_defaults() {
        // umap-learn 0.5: find_ab_params(1.0, 0.1) = (1.5769, 0.8951)
        let (a, b) = find_ab_params(1.0, 0.1);
        assert!((a - 1.5769).abs() < 2e-3, "a = {a}");
        assert!((b - 0.8951).abs() < 2e-3, "b = {b}");
    }
}
