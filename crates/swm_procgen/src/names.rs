//! Seoul-style names: Korean `name` with a romanised `name:en`.

use swm_core::rng::CounterRng;

/// Place-name stems (Korean, Revised Romanisation).
const STEMS: &[(&str, &str)] = &[
    ("도산", "Dosan"),
    ("선릉", "Seolleung"),
    ("봉은사", "Bongeunsa"),
    ("압구정", "Apgujeong"),
    ("논현", "Nonhyeon"),
    ("언주", "Eonju"),
    ("학동", "Hakdong"),
    ("삼성", "Samseong"),
    ("영동", "Yeongdong"),
    ("테헤란", "Teheran"),
    ("강남", "Gangnam"),
    ("서초", "Seocho"),
    ("반포", "Banpo"),
    ("잠원", "Jamwon"),
    ("사평", "Sapyeong"),
    ("양재", "Yangjae"),
    ("개포", "Gaepo"),
    ("역삼", "Yeoksam"),
    ("청담", "Cheongdam"),
    ("동호", "Dongho"),
    ("성수", "Seongsu"),
    ("왕십리", "Wangsimni"),
    ("마포", "Mapo"),
    ("용산", "Yongsan"),
    ("이촌", "Ichon"),
    ("여의", "Yeoui"),
    ("노량진", "Noryangjin"),
    ("한남", "Hannam"),
    ("옥수", "Oksu"),
    ("금호", "Geumho"),
    ("신사", "Sinsa"),
    ("방배", "Bangbae"),
    ("사당", "Sadang"),
    ("대치", "Daechi"),
    ("도곡", "Dogok"),
    ("잠실", "Jamsil"),
    ("석촌", "Seokchon"),
    ("송파", "Songpa"),
    ("망원", "Mangwon"),
    ("합정", "Hapjeong"),
    ("서교", "Seogyo"),
    ("연남", "Yeonnam"),
    ("광나루", "Gwangnaru"),
    ("자양", "Jayang"),
    ("구의", "Guui"),
    ("화양", "Hwayang"),
];

/// Apartment brands.
const BRANDS: &[&str] =
    &["래미안", "자이", "힐스테이트", "푸르지오", "e편한세상", "아이파크", "롯데캐슬", "현대", "삼익", "한양"];

/// Hands out distinct stems in a seed-dependent order.
#[derive(Clone, Debug)]
pub struct NamePool {
    order: Vec<usize>,
    next: usize,
}

impl NamePool {
    pub fn new(rng: &mut CounterRng) -> Self {
        let mut order: Vec<usize> = (0..STEMS.len()).collect();
        for i in (1..order.len()).rev() {
            let j = rng.range_i64(0, i as i64) as usize;
            order.swap(i, j);
        }
        Self { order, next: 0 }
    }

    /// The next stem `(korean, romanised)`; repeats after all are used.
    pub fn stem(&mut self) -> (&'static str, &'static str) {
        let s = STEMS[self.order[self.next % self.order.len()]];
        self.next += 1;
        s
    }
}

pub fn brand(rng: &mut CounterRng) -> &'static str {
    let brand: &&'static str = rng.pick(BRANDS);
    brand
}
