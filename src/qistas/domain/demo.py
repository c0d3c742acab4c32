"""A demo organization to click through: an owner, three annotators, ~50 tasks in two scripts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from qistas.db.enums import Role
from qistas.db.models import Organization, Project, User
from qistas.domain import imports, projects, users

DEMO_SLUG = "demo"
ENGLISH = [
    "The delivery arrived a day early and everything was intact.",
    "Customer support never answered my three emails.",
    "The battery lasts two full days, which I did not expect.",
    "The app crashes every time I open the camera.",
    "Fair price, fast shipping, would buy again.",
    "The hotel room was smaller than the photos suggested.",
    "Our guide was knowledgeable and patient with the children.",
    "The update removed the one feature I used every day.",
    "Setup took five minutes and the instructions were clear.",
    "The soup was cold and the bread was stale.",
    "I love how quiet this dishwasher is.",
    "The screen scratches far too easily.",
    "The train was on time and the seats were comfortable.",
    "I waited forty minutes for a table I had booked.",
    "The course explained recursion better than any book I read.",
    "The headphones hurt my ears after an hour.",
    "Refund processed within a day, no questions asked.",
    "The package was left in the rain and the box fell apart.",
    "Great coffee, friendly staff, slow wifi.",
    "The manual is translated so badly it is unreadable.",
    "It does exactly what it says, nothing more.",
    "My order was delivered to the wrong city.",
    "The new version is noticeably faster on my old laptop.",
    "The subscription renewed without any reminder.",
    "Beautiful view from the balcony at sunset.",
]
ARABIC = [
    "وصل الطلب قبل موعده بيوم وكان كل شيء سليمًا.",
    "لم يرد فريق الدعم على رسائلي الثلاث.",
    "البطارية تدوم يومين كاملين، وهذا فاق توقعاتي.",
    "يتعطل التطبيق كلما فتحت الكاميرا.",
    "سعر مناسب وشحن سريع، سأشتري مرة أخرى.",
    "الغرفة أصغر بكثير مما ظهر في الصور.",
    "كان المرشد السياحي صبورًا مع الأطفال وملمًّا بالتاريخ.",
    "التحديث الأخير حذف الميزة التي أستخدمها يوميًا.",
    "استغرق التركيب خمس دقائق والتعليمات واضحة.",
    "الحساء بارد والخبز قديم.",
    "أحب هدوء غسالة الصحون هذه.",
    "الشاشة تنخدش بسهولة شديدة.",
    "وصل القطار في موعده والمقاعد مريحة.",
    "انتظرت أربعين دقيقة رغم أنني حجزت الطاولة مسبقًا.",
    "شرح الدرس الخوارزميات العودية أفضل من أي كتاب قرأته.",
    "تؤلمني السماعات بعد ساعة من الاستخدام.",
    "أعادوا المبلغ خلال يوم واحد دون أي أسئلة.",
    "تُرك الطرد تحت المطر فتمزق الصندوق.",
    "قهوة ممتازة وموظفون ودودون، لكن الإنترنت بطيء.",
    "دليل الاستخدام مترجم بشكل سيئ لا يُفهم.",
    "يؤدي ما وعد به تمامًا، لا أكثر ولا أقل.",
    "وصل طلبي إلى مدينة أخرى.",
    "الإصدار الجديد أسرع بوضوح على حاسوبي القديم (Windows 10).",
    "تجدد الاشتراك تلقائيًا دون أي تذكير.",
    "منظر رائع من الشرفة وقت الغروب 🌅.",
]
INSTRUCTIONS = """Read the review and choose its overall sentiment.

- **positive**: the writer is mostly satisfied.
- **negative**: the writer is mostly dissatisfied.
- **mixed**: clear praise *and* clear complaint.

Keys: 1 positive, 2 negative, 3 mixed.

اقرأ المراجعة واختر الانطباع العام: إيجابي أو سلبي أو مختلط.
"""


@dataclass(frozen=True)
class DemoAccount:
    email: str
    role: str
    password: str
    token: str


def demo_exists(session: Session) -> bool:
    return session.scalar(select(Organization.id).where(Organization.slug == DEMO_SLUG)) is not None


def database_is_empty(session: Session) -> bool:
    return session.scalar(select(User.id).limit(1)) is None


def seed(session: Session) -> list[DemoAccount]:
    """Create the demo; returns the accounts with their one-time passwords and tokens."""
    org = users.create_org(session, name="Demo Labs", slug=DEMO_SLUG)
    accounts: list[DemoAccount] = []

    def account(email: str, role: str, org_id: int | None) -> User:
        password = secrets.token_urlsafe(12)
        user = users.create_user(session, email=email, role=role, org_id=org_id, password=password)
        accounts.append(DemoAccount(email, role, password, users.create_token(session, user=user, name="demo")))
        return user

    account("admin@demo.qistas.local", Role.ADMIN, None)
    owner = account("owner@demo.qistas.local", Role.OWNER, org.id)
    for n in (1, 2, 3):
        account(f"annotator{n}@demo.qistas.local", Role.ANNOTATOR, None)
    project = projects.create_project(
        session, org_id=org.id, actor=owner, name="Review sentiment (English / العربية)",
        task={"type": "classification", "labels": ["positive", "negative", "mixed"], "text_field": "text"},
        instructions=INSTRUCTIONS, redundancy={"min": 2, "max": 3, "target": 0.9},
    )
    rows = []
    for i, (en, ar) in enumerate(zip(ENGLISH, ARABIC, strict=True)):
        rows.append({"data": {"text": en, "lang": "en"}, "unique_id": f"review-en-{i:02d}"})
        rows.append({"data": {"text": ar, "lang": "ar"}, "unique_id": f"review-ar-{i:02d}"})
    imports.import_tasks(session, project=project, rows=enumerate(rows, start=1))
    return accounts


def demo_project_id(session: Session) -> int | None:
    return session.scalar(
        select(Project.id).join(Organization, Organization.id == Project.org_id)
        .where(Organization.slug == DEMO_SLUG).order_by(Project.id).limit(1)
    )
