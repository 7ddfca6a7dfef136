"""Cable jargon: abbreviations the cables use, to explain them and to widen queries on both search sides."""

from __future__ import annotations

import re

# term -> meaning. For 'GOx' terms used by several countries the meaning lists them; expansion uses "government".
GLOSSARY: dict[str, str] = {
    "AMB": "ambassador", "AMBASSADOR": "chief of mission", "CDA": "charge d'affaires", "CHARGE": "charge d'affaires",
    "DCM": "deputy chief of mission", "POL": "political section", "POLOFF": "political officer",
    "POLCOUNS": "political counselor", "ECON": "economic section", "ECONOFF": "economic officer",
    "ECONCOUNS": "economic counselor", "EMBOFF": "embassy officer", "EMBOFFS": "embassy officers",
    "CONOFF": "consular officer", "CONGEN": "consul general", "PAO": "public affairs officer",
    "PAS": "public affairs section", "DATT": "defense attache", "ODC": "office of defense cooperation",
    "LEGATT": "legal attache FBI", "RSO": "regional security officer", "DEA": "drug enforcement administration",
    "USAID": "united states agency for international development", "MFA": "ministry of foreign affairs",
    "FM": "foreign minister", "FONMIN": "foreign minister", "DFM": "deputy foreign minister",
    "MOD": "ministry of defense", "MOI": "ministry of interior", "MOJ": "ministry of justice",
    "MOF": "ministry of finance", "PM": "prime minister", "DPM": "deputy prime minister",
    "PA": "presidential administration", "CHOD": "chief of defense", "MP": "member of parliament",
    "MPS": "members of parliament", "NGO": "non-governmental organization", "NGOS": "non-governmental organizations",
    "IO": "international organizations", "UNSC": "united nations security council",
    "UNGA": "united nations general assembly", "UNHCR": "united nations refugee agency",
    "IAEA": "international atomic energy agency", "OSCE": "organization for security and cooperation in europe",
    "EU": "european union", "NATO": "north atlantic treaty organization",
    "ISAF": "international security assistance force afghanistan", "GWOT": "global war on terrorism",
    "CT": "counterterrorism", "CN": "counternarcotics", "WMD": "weapons of mass destruction",
    "FMS": "foreign military sales", "IMF": "international monetary fund", "WTO": "world trade organization",
    "FTA": "free trade agreement", "MLAT": "mutual legal assistance treaty", "SOFA": "status of forces agreement",
    "KNB": "national security committee kazakhstan", "FSB": "federal security service russia",
    "ISI": "inter-services intelligence pakistan", "FARC": "revolutionary armed forces of colombia", "AQ": "al qaeda",
    "AQAP": "al qaeda in the arabian peninsula", "AQIM": "al qaeda in the islamic maghreb",
    "HMG": "her majesty's government united kingdom", "GOF": "government of france", "GOS": "government of spain",
    "GOB": "government of burma brazil bolivia", "GOK": "government of kazakhstan kenya kuwait",
    "GOI": "government of india iraq israel indonesia", "GOM": "government of mexico morocco malaysia",
    "GOP": "government of pakistan", "GOT": "government of turkey thailand", "GOR": "government of russia",
    "GOY": "government of yemen", "GOA": "government of afghanistan argentina", "GOC": "government of colombia chile",
    "GOG": "government of germany georgia", "GOE": "government of egypt", "GOJ": "government of japan",
    "GON": "government of nigeria netherlands", "GOU": "government of uzbekistan", "GOV": "government of venezuela",
    "GOZ": "government of zimbabwe", "GOAJ": "government of azerbaijan", "GOTL": "government of timor-leste",
    "SAG": "saudi arabian government", "PRC": "people's republic of china", "ROK": "republic of korea south korea",
    "DPRK": "north korea", "RG": "government of russia", "USG": "united states government",
    "REFTEL": "referenced telegram", "REFTELS": "referenced telegrams", "SEPTEL": "separate telegram",
    "PARA": "paragraph", "PARAS": "paragraphs", "NOTAL": "not to all addressees", "SIPDIS": "siprnet distribution",
    "NOFORN": "no foreign nationals", "SBU": "sensitive but unclassified", "FOUO": "for official use only",
    "EXDIS": "exclusive distribution", "NODIS": "no distribution", "DEMARCHE": "formal diplomatic representation",
    "CODEL": "congressional delegation", "STAFFDEL": "congressional staff delegation",
    "GOL": "government of lebanon libya", "TFG": "transitional federal government somalia",
    "SECSTATE": "secretary of state", "DEPT": "department of state", "DEPARTMENT": "department of state",
    "WASHDC": "washington", "POST": "embassy", "A/S": "assistant secretary", "U/S": "under secretary",
    "DAS": "deputy assistant secretary", "CENTCOM": "central command", "SOUTHCOM": "southern command",
    "EUCOM": "european command", "PRT": "provincial reconstruction team", "ANSF": "afghan national security forces",
    "ANA": "afghan national army", "ANP": "afghan national police", "IED": "improvised explosive device",
    "PKK": "kurdistan workers party", "AKP": "justice and development party turkey",
    "CHP": "republican people's party turkey", "PSOE": "spanish socialist workers party", "PP": "popular party spain",
    "ETA": "basque separatist group", "PT": "workers party brazil", "PMDB": "brazilian democratic movement party",
    "PSDB": "brazilian social democracy party", "TIP": "trafficking in persons", "TIPS": "trafficking in persons",
    "IPR": "intellectual property rights", "HR": "human rights", "EFTO": "encrypted for transmission only",
    "DTG": "date time group",
}
_GOVERNMENT_RE = re.compile(r"^GO[A-Z]{1,2}$")


def lookup(term: str) -> str | None:
    """Meaning of one abbreviation (case-insensitive), or None."""
    return GLOSSARY.get(term.strip().upper())


def expansions(query: str) -> list[tuple[str, str]]:
    """(term, meaning) for each glossary term written in the query as an abbreviation (upper case)."""
    found = []
    for token in re.findall(r"[A-Za-z/]+", query):
        upper = token.upper()
        if upper in GLOSSARY and (token.isupper() or upper in {"REFTEL", "SEPTEL", "EMBOFF", "POLOFF"}):
            found.append((upper, GLOSSARY[upper]))
    return list(dict.fromkeys(found))


def expansion_terms(query: str) -> list[str]:
    """Extra words for the keyword side: the meanings' words ('government' for every GOx)."""
    extra: list[str] = []
    for term, meaning in expansions(query):
        extra += ["government"] if _GOVERNMENT_RE.match(term) else re.findall(r"[a-z]+", meaning)
    return extra


def expand_for_embedding(query: str) -> str:
    """The query with each abbreviation followed by its meaning, for the dense side."""
    pairs = expansions(query)
    if not pairs:
        return query
    return query + " (" + "; ".join(f"{term}: {meaning}" for term, meaning in pairs) + ")"


def search(term: str) -> list[tuple[str, str]]:
    """Glossary entries whose abbreviation or meaning contains `term` (for `cables glossary TERM`)."""
    needle = term.strip().lower()
    return sorted((k, v) for k, v in GLOSSARY.items() if needle in k.lower() or needle in v.lower())
