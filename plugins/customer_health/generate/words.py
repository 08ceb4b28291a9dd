"""Word lists for fake names and free text (made up here; no external data)."""

from __future__ import annotations

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Anders", "Aiko", "Beatriz", "Ben", "Carla", "Chen",
    "Chloé", "Daniel", "Dmitri", "Elena", "Emeka", "Emma", "Farah", "Felix", "Grace", "Hana",
    "Hugo", "Ines", "Ivan", "Jana", "Javier", "Jonas", "José", "Julia", "Kai", "Kenji",
    "Lars", "Laura", "Leila", "Liam", "Lucia", "Malik", "Marta", "Mateo", "Maya", "Mei",
    "Nadia", "Niamh", "Noah", "Olga", "Omar", "Paula", "Priya", "Rafael", "Rania", "Ravi",
    "Rosa", "Sam", "Sara", "Sofia", "Søren", "Tariq", "Tomás", "Uma", "Victor", "Yusuf",
    "Zoe", "Zanele",
)

LAST_NAMES = (
    "Adeyemi", "Alvarez", "Andersson", "Bauer", "Becker", "Brown", "Castro", "Chen", "Costa",
    "Dubois", "Eriksen", "Fernández", "Fischer", "García", "Gonzalez", "Hansen", "Hoffmann",
    "Ito", "Ivanova", "Jensen", "Kim", "Kowalski", "Kumar", "Larsen", "Lee", "Lopez",
    "Martin", "Müller", "Nakamura", "Nguyen", "Novak", "O'Brien", "Okafor", "Olsen", "Patel",
    "Pereira", "Petrov", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith", "Suzuki",
    "Tanaka", "Taylor", "Van der Berg", "Wagner", "Wang", "Weber", "Williams", "Yilmaz",
    "Zhang", "Zimmermann",
)

TITLES = (
    "CEO", "CTO", "CFO", "COO", "VP Operations", "VP Sales", "Head of IT", "IT Manager",
    "Operations Manager", "Procurement Lead", "Finance Director", "Office Manager",
    "Product Owner", "Engineering Manager", "Customer Success Lead", "Analyst",
    "Project Manager", "Director, Customer Experience", "Head of Data", "Administrator",
)

COMPANY_WORDS = (
    "Acme", "Apex", "Aurora", "Beacon", "Blue Harbor", "Bright", "Cedar", "Cobalt", "Crescent",
    "Delta", "Evergreen", "Falcon", "Fjord", "Granite", "Helix", "Horizon", "Indigo", "Juniper",
    "Keystone", "Lumen", "Maple", "Meridian", "Nimbus", "Northwind", "Nova", "Oak", "Orbit",
    "Pioneer", "Polar", "Quartz", "Redwood", "Sable", "Silver", "Solstice", "Summit", "Tidal",
    "Trident", "Vertex", "Willow", "Zenith",
)

COMPANY_NOUNS = (
    "Analytics", "Bakeries", "Biotech", "Capital", "Clinics", "Consulting", "Dental",
    "Energy", "Engineering", "Foods", "Freight", "Games", "Health", "Hotels", "Insurance",
    "Labs", "Legal", "Logistics", "Manufacturing", "Media", "Motors", "Outfitters", "Pharma",
    "Realty", "Retail", "Robotics", "Software", "Solar", "Studios", "Systems", "Textiles",
    "Travel",
)

#: Suffixes; some hold a comma so account names need CSV quoting.
COMPANY_SUFFIXES = (
    "", "", "", " Inc.", ", Inc.", " Ltd", " GmbH", " S.A.", " AB", " & Co.", " LLC",
    " Pty Ltd", " B.V.", ", LLC", " SAS", " K.K.",
)

INDUSTRIES = (
    "software", "retail", "manufacturing", "healthcare", "financial_services", "logistics",
    "education", "media", "hospitality", "energy", "public_sector", "professional_services",
)

#: Subjects per activity type; some with commas, quotes or a newline.
SUBJECTS = {
    "call": (
        "Check-in call", "Intro call with new admin", "Call: pricing, seats and renewal",
        'Follow-up on "slow reports" issue', "Quick sync", "Call notes:\nasked about SSO",
        "Escalation call", "Renewal discussion", "Onboarding call, part 2",
    ),
    "email": (
        "Re: invoice question", "Re: your renewal", "Product update, March release",
        'Fwd: "Getting started" guide', "Re: login problems", "Welcome aboard!",
        "Re: seats for the new team", "Usage report", "Re: Re: contract, terms & DPA",
        "Following up", "Re: cancellation request", "Thanks for the feedback",
    ),
    "meeting": (
        "Roadmap review", "Workshop: reporting setup", "Exec sponsor meeting",
        "Meeting notes:\n- integration\n- training", "Kick-off", "Success plan review",
        'Demo of the "insights" add-on',
    ),
    "qbr": (
        "QBR", "Quarterly business review", "QBR: goals, adoption, next steps",
        'QBR - "value realised" deck',
    ),
    "site_visit": ("On-site visit", "Site visit, training day", "Visit to HQ"),
    "webinar": (
        "Webinar: best practices", "Webinar: what's new", "Attended webinar, asked 3 questions",
    ),
    "other": ("Note", "LinkedIn message", "Conference chat, booth 12", "Survey follow-up", ""),
}

NPS_COMMENTS = {
    "detractor": (
        "Too slow.", "Support takes days to answer, and the reports break.",
        'The "new" UI is confusing', "Price went up again, not worth it",
        "Missing features we were promised.\nConsidering alternatives.",
        "Outage last week hurt us badly", "Hard to use, hard to get help",
    ),
    "passive": (
        "OK overall.", "Does the job, but setup was painful", "Fine, some rough edges",
        'Good product; "export" could be better', "Average support experience",
    ),
    "promoter": (
        "Great product!", "Love it, the team uses it daily", "Support is excellent, fast",
        "Saved us hours every week.\nThanks!", 'Our "go-to" tool', "Easy to use, reliable",
        "Best vendor we work with, hands down",
    ),
}
