"""Demo content for `manage.py seed_demo`: a fictional city newsroom's stories, in the newsroom's usual shape
(headline, dek, key facts, the rest of the story, commentary, the bottom line)."""

NEWSLETTER = {
    "slug": "daily-brief",
    "name": "The Harbour City Daily Brief",
    "description": "The stories that matter in Harbour City, every weekday morning.",
    "from_name": "Harbour City Daily Brief",
    "from_email": "brief@harbourcity.example",
    "reply_to": "newsroom@harbourcity.example",
    "postal_address": "Harbour City Chronicle, 12 Quay Street, Harbour City HC1 4AB",
}

ARTICLES = [
    {
        "slug": "council-approves-ferry-expansion",
        "headline": "Council Approves Ferry Expansion After Eight-Hour Debate",
        "dek": "Two new routes will link the northern suburbs to the harbour by 2028, but the vote split the chamber.",
        "byline": "Amara Okafor",
        "section": "City Hall",
        "tags": "transport, council, ferries",
        "canonical_url": "https://harbourcity.example/news/council-approves-ferry-expansion",
        "image_url": "https://harbourcity.example/media/ferry-terminal.jpg",
        "image_alt": "A white passenger ferry docking at the Quay Street terminal at dawn",
        "key_facts": [
            "Councillors voted 9 to 6 to fund two new ferry routes from Northpoint and Millbrook.",
            "The expansion costs an estimated 84 million, two-thirds from a regional transport grant.",
            "Service is due to start in spring 2028, with boats every 20 minutes at peak times.",
            "Opponents argued the money would do more for bus routes in the eastern districts.",
        ],
        "body": [
            "After a session that ran past midnight, Harbour City Council approved the largest expansion of the "
            "ferry network in four decades on Tuesday.",
            "The plan adds terminals at Northpoint and Millbrook and five new vessels. Transport officials told "
            "councillors the routes would take an estimated 6,000 cars off the Coast Road each weekday.",
            "Councillor Dana Whitfield, who led the opposition, said the eastern districts had waited ten years "
            "for the bus improvements promised in the last transport plan.",
        ],
        "commentary": [
            "The ferry plan is ambitious, and the harbour is the city's most underused piece of infrastructure. "
            "But the eastern districts' complaint deserves a better answer than a promise of a future review.",
            "If the council wants the expansion to be seen as a plan for the whole city, it should publish a "
            "timetable for the bus upgrades before the first ferry contract is signed.",
        ],
        "bottom_line": "The ferries are coming. Whether the rest of the city feels the benefit depends on what the "
        "council does next for the neighbourhoods the boats will never reach.",
    },
    {
        "slug": "hospital-waiting-times-fall",
        "headline": "Emergency Waiting Times Fall for the Third Month in a Row",
        "dek": "St. Brendan's credits a new triage unit, but nurses warn the gains depend on agency staff.",
        "byline": "Lucas Ferreira",
        "section": "Health",
        "tags": "health, hospitals",
        "canonical_url": "https://harbourcity.example/news/hospital-waiting-times-fall",
        "image_url": "https://harbourcity.example/media/st-brendans.jpg",
        "image_alt": "The entrance of St. Brendan's Hospital emergency department",
        "key_facts": [
            "The median wait in St. Brendan's emergency department fell to 2 hours 40 minutes in October.",
            "A rapid-assessment unit opened in July sees walk-in patients within 15 minutes.",
            "Agency nurses covered about one shift in five over the same period.",
        ],
        "body": [
            "Patients at St. Brendan's are waiting less time to be seen than at any point since 2021, according "
            "to figures released by the hospital trust on Monday.",
            "Trust executives attribute the improvement to the rapid-assessment unit, which sends patients with "
            "minor injuries to a separate stream staffed by nurse practitioners.",
            "The nurses' union said the figures hid a reliance on agency staff that the trust cannot afford to "
            "sustain beyond March.",
        ],
        "commentary": [
            "Three months of better numbers is a trend worth celebrating, and the triage unit looks like a model "
            "other hospitals in the region could copy.",
            "The harder question is the staffing. A gain bought with temporary workers is a loan, not a fix.",
        ],
        "bottom_line": "Waits are shorter and the new unit works. Keeping it that way means solving the staffing "
        "gap the figures don't show.",
    },
    {
        "slug": "harbour-lights-festival-returns",
        "headline": "Harbour Lights Festival Returns With a Smaller, Greener Programme",
        "dek": "Organisers drop the fireworks for a drone show and move the main stage to the old customs house.",
        "byline": "Priya Raman",
        "section": "Culture",
        "tags": "culture, events, festival",
        "canonical_url": "https://harbourcity.example/news/harbour-lights-festival-returns",
        "image_url": "https://harbourcity.example/media/harbour-lights.jpg",
        "image_alt": "Lanterns reflected in the water of the harbour at night",
        "key_facts": [
            "The festival runs for five nights from 12 December, down from ten last year.",
            "A 300-drone light show replaces the traditional fireworks on the closing night.",
            "Tickets for the customs house stage go on sale Friday; the waterfront events stay free.",
        ],
        "body": [
            "Harbour Lights, the winter festival that drew 200,000 visitors last year, will return in a pared-back "
            "form after organisers struggled with rising costs.",
            "Festival director Tomás Quinn said the shorter run would let the team concentrate on the waterfront, "
            "where most visitors spend their evenings anyway.",
        ],
        "commentary": [
            "A smaller festival is not necessarily a lesser one. The drone show answers years of complaints from "
            "residents and pet owners about the fireworks, and it costs less.",
        ],
        "bottom_line": "Five nights instead of ten, drones instead of fireworks, and the waterfront stays free: a "
        "sensible reset for a festival that had outgrown its budget.",
    },
    {
        "slug": "port-workers-reach-pay-deal",
        "headline": "Port Workers Reach Pay Deal, Ending Threat of Winter Strike",
        "dek": "The agreement gives crane operators a 6 percent rise over two years and caps overtime.",
        "byline": "Amara Okafor",
        "section": "Business",
        "tags": "business, port, labour",
        "canonical_url": "https://harbourcity.example/news/port-workers-reach-pay-deal",
        "image_url": "https://harbourcity.example/media/port-cranes.jpg",
        "image_alt": "Container cranes at Harbour City port under a grey sky",
        "key_facts": [
            "Union members accepted the offer by 71 percent on a turnout of 84 percent.",
            "The deal raises pay 6 percent over two years and caps compulsory overtime at 8 hours a week.",
            "Shipping lines had warned they would divert cargo to other ports during a strike.",
        ],
        "body": [
            "Dock workers at Harbour City port voted on Thursday to accept a two-year pay agreement, calling off a "
            "strike that would have begun on 1 December.",
            "The port authority said the deal would cost about 11 million a year and would be funded from higher "
            "container handling fees rather than job cuts.",
        ],
        "commentary": [
            "Both sides can claim a win, which is usually the mark of a deal that will hold. The overtime cap "
            "matters more than the headline figure: it was the issue that brought members to the brink.",
        ],
        "bottom_line": "No strike this winter, a fairer overtime rule, and a bill the shipping lines will pay. "
        "The port stays open for the busiest season of the year.",
    },
]

ISSUE = {
    "subject": "Ferries approved, waits fall, and the festival is back",
    "preheader": "Your Harbour City briefing: four stories in five minutes.",
    "intro": "Good morning. The council said yes to the ferries, the hospital has good news with a caveat, "
    "and Harbour Lights is back in a new shape.",
}

# Paragraphs of the length a newsroom story has (tests and benchmarks build long issues from them).
BODY_PARAGRAPH = (
    "On Friday the council's transport committee met to review the plan, and officials set out the timetable "
    "for the tender, the cost estimates and the expected effect on traffic along the Coast Road. Councillors "
    "asked how the figures had been reached and whether the regional grant would arrive in time."
)
COMMENTARY_PARAGRAPH = (
    "The question is not whether the city needs better transport but whether this is the right order of work. "
    "A plan that serves one half of the city first must show the other half when its turn will come, and with "
    "what money, or it will lose the public support it depends on."
)
