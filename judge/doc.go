// Package judge is promgate's statistical canary judge. Per metric it decides whether the
// canary's series (experiment) differs from the baseline's (control) in a direction that
// fails the release; per run it turns those decisions into a score from 0 to 100 and a
// verdict. It is the method of Kayenta's NetflixACAJudge with its Mann-Whitney classifier,
// implemented from the algorithm's description with the standard library only.
//
// # Why this test
//
// Points of a metric over time are rarely normal: latencies are skewed, error ratios sit
// near 0, a single spike dominates any mean. The Mann-Whitney
// (Wilcoxon rank-sum) test compares ranks, so it needs no distribution and a spike is one
// rank among many. Significance alone is not enough on long series, where trivial shifts
// become significant, so a shift must also clear a quarter of its own size, and an effect
// size (mean ratio or CLES) can be required on top before a metric fails.
//
// # Algorithm
//
//  1. Each side on its own: NaN points removed (or replaced by 0); optionally points outside
//     [min(P1, Q1-3*IQR), max(P99, Q3+3*IQR)] dropped (R-7 percentiles). A side left empty
//     is NoData.
//  2. Two sides with the same values, or a single value between them, Pass.
//  3. For x = canary and y = baseline, the 98% confidence interval and the Hodges-Lehmann
//     estimate of the shift x - y, by the normal approximation with continuity and tie
//     correction, as R's wilcox.test(x, y, conf.int=TRUE, exact=FALSE, correct=TRUE): each
//     is the root in d of the standardised rank statistic of concat(x - d, y) at a normal
//     quantile (or at 0), found by Brent's method (tolerance 1e-4, 1000 iterations) between
//     min(x)-max(y) and max(x)-min(y).
//  4. High if the interval lies above 0.25*|estimate| and the effect size reaches the
//     allowed increase (direction increase or either); Low if it lies below -0.25*|estimate|
//     and the effect size reaches the allowed decrease (decrease or either); else Pass.
//  5. A critical metric that is High beyond the critical increase, Low beyond the critical
//     decrease, NoData or Error is a critical failure.
//
// The statistic is evaluated by merging the two sides, sorted once per classification, in
// linear time; nothing is sorted or allocated inside the root finder.
//
// # Deterministic where Kayenta is not, and other choices
//
// Two constant sides that differ: Kayenta adds Gaussian noise (sd = value*1e-5) to each
// side so the test can run. This package adds none: the shift of two constants is known
// exactly, so it is taken as an interval of one point, [c_x - c_y, c_x - c_y], and judged
// by the rules above. A higher constant canary is therefore High and a lower one Low, the
// mean ratio c_x/c_y (or CLES 1 or 0) deciding against the allowed and critical limits,
// and the direction deciding which way fails. Any difference counts; an allowed effect
// size is the way to tolerate a small one.
//
// The root finder returns each bound within its tolerance of the true one, and with tied
// data (a series of mostly zeros) the bounds and the estimate often sit on the same jump
// of the statistic, such as 0. A bound therefore clears the 0.25*|estimate| line only if
// it does so by more than the root finder's resolution; without that, where the root
// finder happened to stop would decide High or Pass.
//
// R's tolerance of 1e-4 is absolute, which would blur the interval of a metric whose
// values span less than that (error ratios, durations in seconds). The test runs on the
// data times a power of two, which is exact and changes no rank: spans under 1
// are scaled to [1, 2), so the tolerance is relative; spans from 1 to 2^512 run as in R;
// larger spans, and magnitudes near the float64 limit, are scaled down so that nothing
// overflows and the root finder converges. A classification is thus the same in any unit.
//
// An undefined effect size (mean ratio with a mean of 0) holds nothing back: the shift
// alone decides, for the allowed and the critical limits alike. Infinite points have no
// meaningful rank or mean and make the metric Error. Classify never panics; Error carries
// the reason.
//
// # Score
//
// Muted metrics are reported, never scored. Each group scores 100 * Pass / (Pass + High +
// Low + NoData of metrics that must have data), or 100 if that is empty; NoData and Error
// are otherwise left out. Groups are weighted by percentages, groups without one sharing
// what is left of 100, and the weighted mean is rounded to 2 decimals. Any critical
// failure, or NoData in half or more of the scored metrics, makes the score 0 and the
// verdict Fail; otherwise the score against the thresholds (Kayenta users typically set
// pass 95, marginal 75) gives Pass, Marginal or Fail.
//
// # References
//
//   - Spinnaker Kayenta, the NetflixACAJudge and its Mann-Whitney classifier (Apache-2.0):
//     the method, its defaults and its published test vectors.
//   - R, stats::wilcox.test with conf.int=TRUE, exact=FALSE, correct=TRUE: the interval and
//     estimate; uniroot (Brent's zeroin) for the roots.
//   - R. P. Brent, Algorithms for Minimization without Derivatives, 1973, chapter 4.
//   - M. J. Wichura, Algorithm AS 241: The Percentage Points of the Normal Distribution,
//     Applied Statistics 37(3), 1988: the normal quantile.
//   - R. J. Hyndman and Y. Fan, Sample Quantiles in Statistical Packages, The American
//     Statistician 50(4), 1996: the R-7 percentile.
package judge
