"""The simulated citizens and OPD staff of Purbalingga: who reports what, when, and how fast it is
handled. Pure planning (no Kafka): the simulator turns these plans into RequestCommands.

Arrivals are Poisson per category with an hour-of-day profile (quiet nights, busy mornings,
emergencies spread more evenly). Staff handle each request in a plan drawn against its SLA
(`citizen_requests.config`, so REQUESTS_SLA_SCALE shortens both the SLAs and the staff for a
demo): most in time, some late, some rejected, a few reopened.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from citizen_requests.core.routing import RequestsConfig, SlaRule
from smartcity.inventory import SITES, Site

# Requests per day at rate multiplier 1 (a regency of ~1 million people, early adoption).
DAILY_VOLUME: dict[str, float] = {
    "permits": 60, "health_info": 40, "emergency": 3, "fire": 1, "roads": 25, "waste": 30,
    "street_lights": 15, "wifi_cctv": 10, "other": 16,
}

# Relative activity per hour of day (WIB), 0..23: offices open 08-16, evening WiFi use.
OFFICE_HOURS = (1, 0.5, 0.3, 0.3, 0.5, 1, 3, 6, 9, 10, 10, 9, 7, 8, 8, 7, 5, 4, 4, 4, 3, 3, 2, 1.5)
ROUND_THE_CLOCK = (4, 3, 3, 3, 3, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 6, 6, 5, 5)
PROFILE: dict[str, tuple[float, ...]] = {"emergency": ROUND_THE_CLOCK, "fire": ROUND_THE_CLOCK}

STREETS = ("Jl. Jenderal Sudirman", "Jl. Ahmad Yani", "Jl. Mayjen Sungkono", "Jl. Letjen S. Parman",
           "Jl. Komisaris Notosumarsono", "Jl. Kapten Piere Tendean", "Jl. MT Haryono",
           "Jl. Jenderal Soedirman Timur", "Jl. Raya Bojongsari", "Jl. Raya Kalimanah")

DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "permits": ("Mohon informasi status izin usaha (NIB) yang diajukan bulan lalu.",
                "Pengajuan PBG untuk renovasi rumah belum ada kabar.",
                "Perpanjangan izin reklame toko kami, berkas sudah lengkap.",
                "Izin keramaian untuk acara pernikahan di balai desa."),
    "health_info": ("Jadwal vaksinasi anak di puskesmas terdekat kapan?",
                    "Informasi pendaftaran BPJS untuk lansia.",
                    "Apakah ada layanan cek kesehatan gratis minggu ini?",
                    "Banyak warga demam, mohon informasi fogging DBD."),
    "emergency": ("Banjir setinggi lutut, air masuk ke rumah warga.",
                  "Pohon tumbang menutup jalan, ada kabel listrik putus.",
                  "Tanah longsor di tebing belakang permukiman.",
                  "Kecelakaan lalu lintas, ada korban luka."),
    "fire": ("Kebakaran rumah warga, api mulai membesar.",
             "Asap tebal dari gudang di pinggir jalan.",
             "Kebakaran lahan kosong dekat permukiman."),
    "roads": ("Jalan berlubang cukup dalam, membahayakan pengendara motor.",
              "Aspal mengelupas sepanjang 50 meter.",
              "Gorong-gorong tersumbat, air meluap ke jalan.",
              "Jembatan kecil retak, mohon segera dicek."),
    "waste": ("Sampah menumpuk di TPS sudah tiga hari tidak diangkut.",
              "Pembuangan sampah liar di pinggir sungai.",
              "Bau menyengat dari tumpukan sampah pasar."),
    "street_lights": ("Lampu PJU mati di sepanjang jalan, gelap saat malam.",
                      "Lampu jalan berkedip-kedip terus.",
                      "Tiang lampu miring hampir roboh."),
    "wifi_cctv": ("WiFi @wifi.pbg tidak bisa tersambung sejak pagi.",
                  "Koneksi WiFi publik sangat lambat.",
                  "CCTV di persimpangan tampaknya mati."),
    "other": ("Usulan penambahan bangku taman.", "Keluhan parkir liar di trotoar.",
              "Pertanyaan tentang layanan adminduk keliling."),
}


# What many people report at once after a flood (a burst of emergency reports).
FLOOD_DESCRIPTIONS = ("Banjir setinggi lutut, air masuk ke rumah warga.",
                      "Air sungai meluap, jalan tergenang dan tidak bisa dilewati.",
                      "Banjir di permukiman, warga butuh evakuasi lansia dan anak-anak.",
                      "Genangan air makin tinggi, arus deras di jalan kampung.")


def rate_per_second(category: str, hour: int, multiplier: float) -> float:
    """Expected submits per second of a category in a given hour of day."""
    profile = PROFILE.get(category, OFFICE_HOURS)
    share = profile[hour % 24] / sum(profile)
    return DAILY_VOLUME.get(category, 0.0) * share * 24 / 86400.0 * multiplier


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth; the means here are small)."""
    if mean <= 0:
        return 0
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass(frozen=True)
class Report:
    """What a citizen submits. No contact details: those reach Kafka only encrypted by the
    gateway, and the simulator writes its commands directly."""

    category: str
    title: str
    description: str
    latitude: float
    longitude: float
    address: str


def _near(rng: random.Random, site: Site, radius_m: float) -> tuple[float, float]:
    # ~111 km per degree of latitude; Purbalingga is close enough to the equator for longitude.
    return (round(site.latitude + rng.uniform(-radius_m, radius_m) / 111_000, 6),
            round(site.longitude + rng.uniform(-radius_m, radius_m) / 111_000, 6))


def make_report(rng: random.Random, category: str, site: Site | None = None,
                radius_m: float = 400.0, descriptions: tuple[str, ...] | None = None) -> Report:
    site = site or rng.choice(SITES)
    lat, lon = _near(rng, site, radius_m)
    return Report(
        category=category, title=f"{category.replace('_', ' ').title()} di sekitar {site.name}",
        description=rng.choice(descriptions or DESCRIPTIONS.get(category, DESCRIPTIONS["other"])),
        latitude=lat, longitude=lon,
        address=f"{rng.choice(STREETS)} No. {rng.randint(1, 200)}, dekat {site.name}, Purbalingga",
    )


@dataclass(frozen=True)
class StaffStep:
    """One action of the OPD staff, `after_s` seconds after the request was submitted."""

    after_s: float
    action: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StaffHabits:
    late_share: float = 0.12        # steps that miss their SLA
    reject_share: float = 0.06      # not this OPD's business, or incomplete
    permit_reject_share: float = 0.15
    comment_share: float = 0.3
    reopen_share: float = 0.05


def staff_plan(rng: random.Random, category: str, sla: SlaRule, habits: StaffHabits = StaffHabits(),
               slowness: float = 1.0) -> list[StaffStep]:
    """How the routed OPD will handle one request, timed against its SLA."""
    late = rng.random() < habits.late_share
    ack = sla.acknowledge_s * (rng.uniform(1.05, 1.8) if late else rng.uniform(0.1, 0.9)) * slowness
    reject = habits.permit_reject_share if category == "permits" else habits.reject_share
    if rng.random() < reject:
        reason = "Berkas belum lengkap / bukan kewenangan OPD."
        return [StaffStep(ack, "acknowledge", {"note": "Laporan diterima, sedang diverifikasi."}),
                StaffStep(ack * 1.2 + 1, "reject", {"reason": reason})]
    span = max(sla.resolve_s - ack, sla.resolve_s * 0.2)
    resolve_late = rng.random() < habits.late_share
    resolve = ack + span * (rng.uniform(1.05, 1.6) if resolve_late else rng.uniform(0.3, 0.9)) * slowness
    assign = ack + (resolve - ack) * 0.15
    start = ack + (resolve - ack) * 0.3
    steps = [StaffStep(ack, "acknowledge", {"note": "Laporan diterima."}),
             StaffStep(assign, "assign", {"assignee": f"tim-{rng.randint(1, 5)}", "note": "Diteruskan."}),
             StaffStep(start, "start", {"note": "Petugas menuju lokasi."})]
    if rng.random() < habits.comment_share:
        steps.append(StaffStep((start + resolve) / 2, "comment", {"text": "Penanganan masih berlangsung."}))
    steps.append(StaffStep(resolve, "resolve", {"note": "Sudah ditangani."}))
    if rng.random() < habits.reopen_share:
        steps += [StaffStep(resolve * 1.1, "reopen", {"reason": "Warga melapor masalah muncul lagi."}),
                  StaffStep(resolve * 1.3, "resolve", {"note": "Ditangani ulang."})]
    last = steps[-1].after_s
    steps.append(StaffStep(last + sla.resolve_s * 0.05, "close", {"note": "Laporan ditutup."}))
    return steps


def plan_for(rng: random.Random, config: RequestsConfig, category: str, priority: int,
             slowness: float = 1.0) -> list[StaffStep]:
    sla = config.sla_for(category, priority or config.default_priority(category))  # type: ignore[arg-type]
    return staff_plan(rng, category, sla, slowness=slowness)
