"""Write a small synthetic news-recommendation dataset in the exact MIND format.

    python scripts/make_mind_sample.py [--out DIR] [--seed N]

Writes `train/` and `dev/`, each with `news.tsv` (8 columns) and `behaviors.tsv` (5 columns),
laid out like the official MIND release, so the loaders and the training loop can be exercised
end to end without downloading MIND. The data is learnable from text: every user has a few
latent favourite subcategories, their histories and clicks follow those interests, and the
topic of an article is carried by the words of its title and abstract (teams, tickers, dishes,
car models, ...), never by a category token. A per-article popularity effect exists but is weak,
so a click-count baseline stays well below a model that reads the text.

The output depends only on the seed (numpy's default_rng); the same seed gives byte-identical
files. Only numpy and the standard library are used.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "jaxrec" / "data" / "samples" / "mind"
DEFAULT_SEED = 20191114

N_USERS = 1500
N_TRAIN_IMPRESSIONS = 4000
N_DEV_IMPRESSIONS = 1000
# Publication days are counted from 11/9/2019 (day 0). Histories come from the archive
# (days < 0), train impressions happen on days 0-4 and dev impressions on day 5 (11/14/2019).
FIRST_DAY = date(2019, 11, 9)
ARCHIVE_DAYS = 28
ARCHIVE_NEWS = 1100
NEWS_PER_TRAIN_DAY = 270
DEV_DAY_NEWS = 550
TRAIN_DAYS = 5
DEV_DAY = 5
# Candidates come from the last three days of news; dev favours the newest day so that a
# sizeable share of dev candidates was never shown in train, as in MIND.
TRAIN_RECENCY = (0.35, 0.7, 1.0)
DEV_RECENCY = (0.8, 1.0, 1.0)

# Click model: utility = BETA * log(affinity) + GAMMA * quality + Gumbel noise; the top-K
# candidates of an impression are clicked. BETA sets how much interest explains clicks (the
# oracle AUC), GAMMA the weak popularity effect a click-count baseline can pick up.
BETA = 1.0
GAMMA = 1.0
CLICKS_PER_IMPRESSION = ((1, 2, 3), (0.95, 0.04, 0.01))
CANDIDATES_RANGE = (15, 35)
HISTORY_RANGE = (5, 50)
EMPTY_HISTORY_SHARE = 0.03
HISTORY_NOISE = 0.12


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split("|")]


GLOBAL_SLOTS: dict[str, list[str]] = {
    "city": _split(
        "Chicago|Houston|Phoenix|Denver|Seattle|Atlanta|Boston|Miami|Dallas|Detroit|Minneapolis|"
        "Portland|Nashville|Charlotte|Tampa|Cleveland|Pittsburgh|St. Louis|Kansas City|"
        "Sacramento|San Diego|Baltimore|Milwaukee|Indianapolis|Columbus|Austin|Raleigh|"
        "Salt Lake City|Albuquerque|Omaha|Buffalo|New Orleans|Orlando|Las Vegas|San Antonio|"
        "Louisville|Richmond|Boise|Tucson|Memphis|Spokane|Des Moines|Tulsa|Knoxville"
    ),
    "state": _split(
        "Texas|California|Florida|Ohio|Michigan|Georgia|Arizona|Colorado|Minnesota|Wisconsin|"
        "Pennsylvania|Virginia|Oregon|Tennessee|North Carolina|Illinois|New York|Washington|"
        "Iowa|Kentucky|Missouri|Alabama|Nevada|Utah|Indiana|Oklahoma|Kansas|Maine|New Mexico"
    ),
    "weekday": _split("Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"),
    "num": [str(i) for i in range(2, 10)],
    "big": [str(i) for i in range(12, 96)],
    "pct": [str(i) for i in range(2, 36)],
    "smallpct": _split("1.2|1.5|1.8|2.1|2.4|2.7|3.1|0.8|0.6"),
    "money": _split("$10,000|$25,000|$40,000|$100,000|$250,000|$500,000|$1 million|$60,000"),
    "bil": _split(
        "$1.2 billion|$2.8 billion|$4.5 billion|$9 billion|$15.6 billion|$26 billion|"
        "$750 million|$340 million|$3.1 billion"
    ),
    "thousands": _split("5,000|12,000|18,500|28,000|40,000|65,000|100,000|240,000"),
    "years": [str(i) for i in range(6, 41)],
    "age": [str(i) for i in range(28, 66)],
    "nextyear": _split("2020"),
    "dollars": _split("$49|$59|$79|$99|$129|$50|$100|$150"),
}


@dataclass(frozen=True)
class Topic:
    """One MIND subcategory: its category, share of articles, slot fillers and templates."""

    category: str
    subcategory: str
    slots: dict[str, list[str]]
    titles: tuple[str, ...]
    abstracts: tuple[str, ...]


def _topic(category: str, sub: str, titles: str, abstracts: str, **slots: str) -> Topic:
    # Titles are one per line; abstracts are paragraphs separated by blank lines, so that
    # they can wrap; slot fillers are "|"-separated strings.
    return Topic(
        category,
        sub,
        {name: _split(values) for name, values in slots.items()},
        tuple(line.strip() for line in titles.strip().splitlines()),
        tuple(" ".join(block.split()) for block in re.split(r"\n\s*\n", abstracts.strip())),
    )


_NFL = (
    "Packers|Bears|Vikings|Lions|Cowboys|Eagles|Giants|Patriots|Bills|Jets|Dolphins|Steelers|"
    "Ravens|Browns|Bengals|Chiefs|Raiders|Broncos|Chargers|49ers|Seahawks|Rams|Saints|Falcons|"
    "Buccaneers|Texans|Colts|Titans|Jaguars"
)
_NBA = (
    "Lakers|Clippers|Celtics|Bucks|Raptors|76ers|Heat|Nets|Knicks|Warriors|Rockets|Nuggets|Jazz|"
    "Mavericks|Trail Blazers|Spurs|Pelicans|Suns|Thunder|Timberwolves|Grizzlies|Hawks|Hornets|"
    "Bulls|Cavaliers|Pistons|Pacers|Magic|Wizards"
)
_MLB = (
    "Yankees|Red Sox|Astros|Dodgers|Nationals|Cubs|Braves|Mets|Phillies|Brewers|Twins|Indians|"
    "Rays|Athletics|Angels|Mariners|Padres|Rockies|Diamondbacks|Reds|Pirates|Tigers|Royals|"
    "White Sox|Orioles|Blue Jays|Marlins"
)
_NHL = (
    "Bruins|Capitals|Penguins|Lightning|Maple Leafs|Canadiens|Blackhawks|Red Wings|Blues|"
    "Avalanche|Golden Knights|Oilers|Flames|Canucks|Sharks|Ducks|Coyotes|Stars|Predators|Wild|"
    "Hurricanes|Islanders|Devils|Flyers|Blue Jackets|Sabres|Senators"
)
_CARS = (
    "Ford F-150|Chevrolet Silverado|Toyota Camry|Honda Civic|Tesla Model 3|Nissan Rogue|"
    "Hyundai Tucson|Kia Telluride|Subaru Outback|Jeep Wrangler|Ford Mustang|Chevrolet Corvette|"
    "Honda Accord|Toyota RAV4|Honda CR-V|Ford Explorer|Chevrolet Tahoe|Ram 1500|Mazda CX-5|"
    "Volkswagen Atlas|BMW X5|Mercedes-Benz GLE|Porsche Taycan|Toyota Highlander|Subaru Crosstrek|"
    "Hyundai Palisade|Jeep Grand Cherokee|Lincoln Aviator|Cadillac Escalade|Kia Soul"
)
_ARTISTS = (
    "Taylor Swift|Lizzo|Billie Eilish|Ariana Grande|Post Malone|Lil Nas X|Harry Styles|"
    "Shawn Mendes|Camila Cabello|Ed Sheeran|Beyoncé|Garth Brooks|Carrie Underwood|Luke Combs|"
    "Miranda Lambert|Selena Gomez|Jonas Brothers|BTS|Celine Dion|Elton John|Rosalía|Bad Bunny|"
    "Maren Morris|Kacey Musgraves|Keith Urban|Dolly Parton|Cardi B|Halsey"
)
_AWARDS = "CMA Awards|Grammy Awards|American Music Awards|Billboard Music Awards|Latin Grammys"

TOPICS: tuple[Topic, ...] = (
    _topic(
        "sports",
        "football_nfl",
        """
        {team} rally past {team2} behind {player}’s late touchdown drive
        {coach} says {team} must fix red-zone woes before Week {week}
        {player} limited in practice with {injury} injury ahead of {team} game
        Week {week} NFL power rankings: {team} climb as the {team2} stumble
        {team} sign veteran {position} after season-ending injury to starter
        Fantasy football Week {week}: start {player}, sit your backup {position}
        Takeaways from the {team}’ {score} loss to the {team2}
        {team} defense stifles {team2} in {score} win on {weekday} night
        """,
        """
        {player} threw for {yards} yards and {num} touchdowns as the {team} beat the {team2} {score}
        on {weekday}, keeping their playoff hopes alive in a crowded conference.

        The {team} will be without their starting {position} for at least {num} weeks after an MRI
        confirmed a {injury} injury, {coach} told reporters on {weekday}.

        {coach} said the offense left too many points on the field against the {team2}, and the
        coaching staff spent {weekday} reviewing every snap inside the {num}-yard line.

        The {team} signed a veteran {position} off the practice squad and placed a starter on
        injured reserve, a move that ends his season after a {injury} injury.
        """,
        team=_NFL,
        player=(
            "Aaron Rodgers|Tom Brady|Patrick Mahomes|Lamar Jackson|Russell Wilson|Drew Brees|"
            "Dak Prescott|Kirk Cousins|Deshaun Watson|Matthew Stafford|Carson Wentz|"
            "Baker Mayfield|Jared Goff|Kyler Murray|Josh Allen|Ezekiel Elliott|"
            "Christian McCaffrey|Derrick Henry|Saquon Barkley|Michael Thomas|Julio Jones|"
            "Odell Beckham Jr.|Aaron Donald|Khalil Mack|Dalvin Cook|Travis Kelce"
        ),
        coach=(
            "Bill Belichick|Andy Reid|Sean McVay|Kyle Shanahan|Sean Payton|Mike Tomlin|"
            "Matt LaFleur|John Harbaugh|Pete Carroll|Jason Garrett|Doug Pederson|Mike Zimmer"
        ),
        position=(
            "quarterback|running back|wide receiver|tight end|cornerback|linebacker|left tackle|"
            "safety|kicker|defensive end"
        ),
        injury="hamstring|ankle|knee|concussion|shoulder|groin|calf|rib",
        week="10|11|12",
        score="24-17|31-20|27-24|20-13|34-31|17-10|23-16|38-21|16-13|30-27",
        yards=" | ".join(str(y) for y in range(188, 420, 7)),
    ),
    _topic(
        "sports",
        "basketball_nba",
        """
        {player} scores {big} as {team} hold off {team2} in overtime thriller
        {team} star {player} to miss {num} games with sprained {injury}
        {player} records another triple-double in {team} rout of the {team2}
        NBA trade rumors: {team} exploring deals for a backup point guard
        {team} snap {num}-game losing streak with road win over {team2}
        Why the {team} bench has become the league’s most dangerous unit
        {player} drains buzzer-beater from the corner to stun the {team2}
        """,
        """
        {player} finished with {big} points, {num} rebounds and {num2} assists as the {team} pulled
        away from the {team2} in the fourth quarter on {weekday} night.

        The {team} will be without {player} for at least {num} games after imaging revealed a
        sprained {injury}. The team said he will be re-evaluated next week.

        Front offices around the league believe the {team} are ready to trade a future first-round
        pick for a veteran guard who can help them make a playoff push.

        After a slow start to the season, the {team} have won {num} straight games behind improved
        three-point shooting and a bench that leads the league in scoring.
        """,
        team=_NBA,
        player=(
            "LeBron James|Anthony Davis|Giannis Antetokounmpo|Kawhi Leonard|James Harden|"
            "Stephen Curry|Luka Dončić|Joel Embiid|Kevin Durant|Kyrie Irving|Damian Lillard|"
            "Nikola Jokić|Russell Westbrook|Paul George|Jimmy Butler|Trae Young|Kemba Walker|"
            "Pascal Siakam|Devin Booker|Karl-Anthony Towns|Ben Simmons|Donovan Mitchell"
        ),
        injury="ankle|wrist|knee|thumb|foot|elbow",
    ),
    _topic(
        "sports",
        "baseball_mlb",
        """
        {hitter} free agency: {team} emerge as favorites to land the slugger
        {team} hire former catcher as new {role} after a long search
        Hot stove: {team} and {team2} discuss trade involving top pitching prospect
        {pitcher} wins Cy Young Award after dominant season on the mound
        {hitter} named MVP finalist after career year at the plate
        {team} decline option on veteran reliever, clearing room in the bullpen
        Report: {pitcher} seeking record contract as {team} and {team2} circle
        Winter meetings preview: what the {team} need to contend next season
        """,
        """
        {pitcher} struck out more than {num} batters per nine innings this season, and agents expect
        the right-hander to command a deal worth well over {bil}.

        The {team} announced on {weekday} that they have hired a new {role}, ending a search that
        lasted {num} weeks and included several former big-league catchers.

        {hitter} hit {big} home runs and drove in more than 100 runs, making the slugger one of
        three finalists for the award, which will be announced next week.

        With spring training three months away, the {team} still need a starting pitcher and a
        left-handed bat off the bench, according to people familiar with the club's plans.
        """,
        team=_MLB,
        pitcher=(
            "Gerrit Cole|Justin Verlander|Stephen Strasburg|Max Scherzer|Jacob deGrom|"
            "Hyun-Jin Ryu|Zack Wheeler|Madison Bumgarner|Walker Buehler|Jack Flaherty|"
            "Clayton Kershaw|Shane Bieber"
        ),
        hitter=(
            "Mike Trout|Cody Bellinger|Christian Yelich|Anthony Rendon|Mookie Betts|Aaron Judge|"
            "Francisco Lindor|Nolan Arenado|Pete Alonso|Ronald Acuña Jr.|Juan Soto|José Altuve|"
            "Alex Bregman|Josh Donaldson|Freddie Freeman|Xander Bogaerts"
        ),
        role="manager|pitching coach|general manager|bench coach|hitting coach",
    ),
    _topic(
        "sports",
        "icehockey_nhl",
        """
        {player} scores twice as {team} beat {team2} in a shootout
        {goalie} makes {saves} saves to lead the {team} past {team2}
        {team} place {player} on injured reserve with upper-body injury
        {team} fire head coach after {num}-game winless skid
        {player} reaches career milestone with power-play goal against {team2}
        {team} call up top prospect from AHL to fix struggling power play
        """,
        """
        {player} scored on the power play and again in the third period, and {goalie} stopped
        {saves} shots as the {team} beat the {team2} {hscore} on {weekday}.

        The {team} have lost {num} straight games and rank near the bottom of the league on the
        penalty kill, putting pressure on the front office to make a change.

        The {team} said {player} is week-to-week with an upper-body injury suffered when he was
        checked into the boards late in the second period.

        {goalie} has allowed two goals or fewer in {num} consecutive starts, and the {team} now sit
        atop the division standings for the first time this season.
        """,
        team=_NHL,
        player=(
            "Alex Ovechkin|Sidney Crosby|Connor McDavid|Nathan MacKinnon|Patrick Kane|"
            "Auston Matthews|Leon Draisaitl|David Pastrnak|Nikita Kucherov|Mark Scheifele|"
            "Jack Eichel|Evgeni Malkin|Patrice Bergeron|Brad Marchand|Steven Stamkos|John Tavares"
        ),
        goalie=(
            "Tuukka Rask|Marc-André Fleury|Carey Price|Andrei Vasilevskiy|Jordan Binnington|"
            "Ben Bishop|Frederik Andersen|Henrik Lundqvist|Pekka Rinne|Braden Holtby"
        ),
        hscore="3-2|4-1|2-1|5-3|4-3|3-1|6-2|5-4",
        saves="29|31|33|35|37|38|40|42|44|47",
    ),
    _topic(
        "sports",
        "soccer",
        """
        {player} scores stoppage-time winner as {club} edge {club2} in {competition} clash
        {manager} praises {club} resilience after comeback against {club2}
        {club} reportedly ready to bid for {player} in the January transfer window
        {competition} table: {club} extend lead at the top after win over {club2}
        {player} nets hat trick to send {club} into the {competition} knockout stage
        {club} sack manager after humiliating home defeat to {club2}
        USMNT roster: {num} takeaways from the latest call-ups before November friendlies
        """,
        """
        {player} curled a free kick into the top corner in the {minute}th minute, and {club} held on
        for a {sscore} win over {club2} that keeps their title hopes alive.

        {manager} said his squad showed real character after falling behind early, praising the
        midfield for controlling possession in the second half against {club2}.

        According to reports in the European press, {club} are preparing an offer worth {fee} for
        {player}, who has been unsettled since the start of the season.

        {club} confirmed on {weekday} that the manager had been dismissed with the team sitting
        {place} in the table, {big} points behind the leaders.
        """,
        club=(
            "Liverpool|Manchester City|Manchester United|Chelsea|Arsenal|Tottenham|Leicester City|"
            "Barcelona|Real Madrid|Atlético Madrid|Bayern Munich|Borussia Dortmund|Juventus|"
            "Inter Milan|Paris Saint-Germain|Ajax|LA Galaxy|Seattle Sounders|Toronto FC|"
            "Atlanta United"
        ),
        player=(
            "Lionel Messi|Cristiano Ronaldo|Mohamed Salah|Sadio Mané|Kylian Mbappé|Neymar|"
            "Harry Kane|Raheem Sterling|Kevin De Bruyne|Virgil van Dijk|Robert Lewandowski|"
            "Eden Hazard|Christian Pulisic|Zlatan Ibrahimović|Paul Pogba|Son Heung-min"
        ),
        competition=(
            "Premier League|Champions League|La Liga|Serie A|Bundesliga|Europa League|MLS Cup"
        ),
        manager=(
            "Jürgen Klopp|Pep Guardiola|Ole Gunnar Solskjaer|Mauricio Pochettino|Frank Lampard|"
            "Zinedine Zidane|Ernesto Valverde|Unai Emery"
        ),
        minute="78|81|84|86|88|89|90|92|93",
        sscore="1-0|2-1|3-2|2-0|3-1|4-2",
        place="ninth|12th|14th|seventh|eighth|11th|15th",
        fee="$45 million|$60 million|$90 million|$120 million|$150 million",
    ),
    _topic(
        "sports",
        "golf",
        """
        {golfer} shoots bogey-free {gscore} to grab the early lead at the {event}
        {golfer} withdraws from the {event} citing lingering back soreness
        {golfer} among captain’s picks as the Presidents Cup roster takes shape
        Leaderboard: {golfer} and {golfer2} share the lead at the {event}
        {golfer} reveals new driver and swing changes ahead of the {event}
        Why {course} remains the toughest test on the professional golf calendar
        """,
        """
        {golfer} made {num} birdies and no bogeys on {weekday} to sit at {under} under par, one shot
        clear of {golfer2} heading into the weekend at the {event}.

        {golfer} said he felt tightness in his back on the practice range and decided not to risk
        further injury with the biggest events of the season still ahead.

        The par-5 finishing hole at {course} yielded just {num} eagles all week, as gusting winds
        pushed scoring averages well above par for most of the field.

        {golfer} has been working with a new swing coach since the summer and says the changes have
        added nearly {big} yards off the tee.
        """,
        golfer=(
            "Tiger Woods|Rory McIlroy|Brooks Koepka|Dustin Johnson|Jordan Spieth|Justin Thomas|"
            "Rickie Fowler|Phil Mickelson|Jon Rahm|Patrick Reed|Xander Schauffele|"
            "Bryson DeChambeau|Hideki Matsuyama|Adam Scott|Tony Finau|Webb Simpson"
        ),
        event=(
            "Mayakoba Golf Classic|Houston Open|RSM Classic|Presidents Cup|Hero World Challenge|"
            "DP World Tour Championship|CME Group Tour Championship"
        ),
        course=(
            "Pebble Beach|Augusta National|Royal Melbourne|TPC Sawgrass|Bethpage Black|"
            "Torrey Pines|Whistling Straits|Oakmont"
        ),
        gscore="63|64|65|66|67",
        under="8|9|10|11|12|13|14",
    ),
    _topic(
        "sports",
        "tennis",
        """
        {player} beats {player2} in straight sets to reach the {event} semifinals
        {player} clinches year-end No. 1 ranking after a dominant win in London
        {player} withdraws from the {event} with a lingering shoulder injury
        {player} rallies from a set down to stun {player2} in three sets
        {player} splits with longtime coach ahead of the {event} next month
        {player} and {player2} set up blockbuster final at the {event}
        """,
        """
        {player} broke serve {num} times and saved every break point faced to beat {player2}
        {tscore}, setting up a semifinal against the defending champion at the {event}.

        {player} said the shoulder had been bothering him for weeks and doctors advised rest before
        the start of the new season in January.

        {player} needed nearly three hours to overcome {player2}, dropping the opening set before
        finding rhythm on serve in a tense final-set tiebreak.

        The {event} field is set after {player} secured the final spot, with the season-ending
        tournament guaranteeing ranking points and record prize money.
        """,
        player=(
            "Novak Djokovic|Rafael Nadal|Roger Federer|Daniil Medvedev|Dominic Thiem|"
            "Stefanos Tsitsipas|Alexander Zverev|Serena Williams|Naomi Osaka|Ashleigh Barty|"
            "Simona Halep|Coco Gauff|Bianca Andreescu|Karolína Plíšková|Elina Svitolina|"
            "Matteo Berrettini"
        ),
        event="ATP Finals|WTA Finals|Davis Cup Finals|Paris Masters|Australian Open|Fed Cup",
        tscore="6-4, 6-3|7-6, 6-4|6-2, 7-5|6-3, 6-4|7-5, 6-7, 6-3|6-1, 6-4",
    ),
    _topic(
        "sports",
        "football_ncaa",
        """
        College Football Playoff rankings: {school} stay at No. {num} as {school2} climb
        {player} throws {num} touchdown passes as {school} rout {school2}
        Heisman watch: {player} strengthens his case with big game against {school2}
        {school} coach on the hot seat after another loss to {school2}
        {school} land a five-star quarterback recruit from a {state} high school
        Bowl projections: {school} headed to a New Year’s Six game after upset win
        """,
        """
        {player} threw for {yards} yards and {num} touchdowns, and {school} never trailed in a
        lopsided win over {school2} on {weekday} afternoon.

        The selection committee kept {school} in the top four, citing a strong defense and a road
        win over a ranked opponent, while {school2} moved up {num} spots.

        The {state} native chose {school} over several other programs, giving the coaching staff its
        highest-rated quarterback commitment in more than a decade.

        Boosters are growing impatient after {school} dropped to {num}-{num2} in conference play,
        and the athletic director declined to offer a vote of confidence.
        """,
        school=(
            "Alabama|LSU|Ohio State|Clemson|Georgia|Oregon|Oklahoma|Utah|Penn State|Minnesota|"
            "Baylor|Florida|Auburn|Michigan|Wisconsin|Notre Dame|Iowa|Texas A&M|Memphis|"
            "Boise State|Nebraska|Tennessee"
        ),
        player=(
            "Joe Burrow|Tua Tagovailoa|Justin Fields|Chase Young|Trevor Lawrence|Jalen Hurts|"
            "Jonathan Taylor|Ja'Marr Chase|J.K. Dobbins|Justin Herbert|Jake Fromm|Travis Etienne"
        ),
        yards=" | ".join(str(y) for y in range(182, 430, 9)),
    ),
    _topic(
        "finance",
        "markets",
        """
        Dow closes at a record high as trade deal optimism lifts {stock} and {stock2}
        Stock market today: {index} slips as investors weigh Fed comments
        {stock} shares jump {pct}% after quarterly earnings beat Wall Street estimates
        {num} dividend stocks to buy now for a retirement portfolio, including {stock}
        {bond} yields rise as investors rotate out of safe-haven assets
        Oil prices fall {smallpct}% on worries about weak global demand
        Why analysts say {stock} stock could climb another {pct}% next year
        {index} posts weekly gain led by technology and bank shares
        """,
        """
        The {index} rose {smallpct} percent on {weekday} as investors cheered signs of progress in
        U.S.-China trade talks, while shares of {stock} and {stock2} led the gains.

        Shares of {stock} climbed in after-hours trading after the company reported quarterly
        revenue of {bil}, topping analyst forecasts, and raised its outlook for the holiday quarter.

        Federal Reserve officials signaled they are likely to keep interest rates unchanged, and
        bond traders trimmed bets on another cut before the end of next year.

        Analysts at several Wall Street firms raised their price targets on {stock}, citing strong
        demand and improving profit margins heading into next year.
        """,
        index="Dow Jones Industrial Average|S&P 500|Nasdaq Composite|Russell 2000",
        stock=(
            "Apple|Microsoft|Amazon|Tesla|Netflix|Nvidia|Boeing|Walmart|Disney|Home Depot|Cisco|"
            "Intel|JPMorgan|Exxon Mobil|Nike|Uber|Beyond Meat|Alibaba|AMD|Salesforce|Visa"
        ),
        bond="10-year Treasury|30-year Treasury|2-year Treasury|German bond",
    ),
    _topic(
        "finance",
        "finance-companies",
        """
        {company} to cut {jobs} jobs as part of a sweeping restructuring plan
        {company} CEO steps down after board investigation into personal conduct
        {company} agrees to buy {company2} in a deal valued at {bil}
        {company} opening {num} new stores across the Midwest next year
        {company} reports a surprise quarterly loss as costs pile up
        {company} workers vote to unionize at {city} distribution center
        {company} faces federal lawsuit over hidden fees charged to customers
        """,
        """
        {company} said on {weekday} it will eliminate about {jobs} positions over the next year as
        it reorganizes its business and tries to save about {bil} annually.

        The board of {company} said its {exec} violated company policy and would leave immediately,
        a surprise move that sent shares lower in premarket trading.

        The acquisition would give {company} access to millions of new customers and is expected to
        close in the first half of next year, pending regulatory approval.

        {company} blamed higher labor and shipping costs for the disappointing results and warned
        that margins would stay under pressure through the holiday season.
        """,
        company=(
            "Boeing|General Electric|WeWork|Uber|Lyft|Peloton|Google|Facebook|Walmart|Target|"
            "Macy's|Starbucks|McDonald's|AT&T|Verizon|Nissan|General Motors|CVS Health|Kroger|"
            "FedEx|T-Mobile|Sprint|Tiffany|Forever 21|Sears|Bayer|Kohl's|Wells Fargo"
        ),
        exec="chief executive|chief financial officer|president|chief operating officer",
        jobs="500|1,200|2,000|4,500|7,000|10,000|12,000|350|800|3,300",
    ),
    _topic(
        "finance",
        "finance-real-estate",
        """
        Mortgage rates hold near three-year lows, and {city} homeowners rush to refinance
        The most expensive home for sale in {city} just hit the market
        {city} home prices rise {pct}% as the number of listings shrinks
        This {beds}-bedroom farmhouse in {state} is listed for {price}
        Renters in {city} now spend a third of their income on housing
        Should you buy a home in {city} before spring? Real estate agents weigh in
        Tiny home community planned outside {city} aims to ease the housing shortage
        """,
        """
        The {beds}-bedroom estate sits on {big} acres with a heated pool, a wine cellar and a guest
        house, and it is listed for {price}, according to the listing agent.

        The median sale price of a single-family home in {city} climbed {pct} percent from a year
        earlier, while the number of listings fell to the lowest level since 2013.

        The average 30-year fixed mortgage rate slipped to {rate} percent this week, according to
        Freddie Mac, giving buyers a bit more room in their budgets.

        A new report found rents in {city} rose faster than wages for the fifth straight year,
        squeezing tenants and pushing more first-time buyers into the suburbs.
        """,
        beds="3|4|5|6|7",
        price=(
            "$1.2 million|$849,000|$3.5 million|$12.9 million|$625,000|$2.1 million|$5.75 million|"
            "$399,900"
        ),
        rate="3.66|3.75|3.69|3.78|3.71",
    ),
    _topic(
        "finance",
        "personalfinance",
        """
        {num} money mistakes to avoid in the five years before you retire
        How much you should have saved for retirement by age {age}
        Social Security cost-of-living raise: what retirees in {state} should know
        How to pay off {debt} in credit card debt in a single year
        Open enrollment: {num} tips for choosing the right health insurance plan
        I'm {age} with no retirement savings. Is it too late to start?
        Want to retire early? How one couple in {city} did it at {age}
        """,
        """
        Financial planners say the biggest mistake people make is claiming Social Security too
        early, which permanently reduces monthly benefits by as much as 30 percent.

        Experts recommend having saved about {num} times your annual salary by age {age}, though the
        right number depends on your expenses and where you plan to live.

        Paying more than the minimum each month and moving debt to a card with a zero-percent
        introductory rate can save hundreds of dollars in interest charges.

        The couple lived on half their income for a decade, invested the rest in low-cost index
        funds and paid off their mortgage before leaving their jobs in {city}.

        Open enrollment ends December 15, and comparing deductibles and out-of-pocket maximums can
        matter more than finding the lowest monthly premium.
        """,
        age="30|35|40|45|50|55|60|62|65",
        debt="$5,000|$8,000|$10,000|$15,000|$20,000|$30,000",
    ),
    _topic(
        "news",
        "newsus",
        """
        Veterans Day parade draws thousands of spectators to downtown {city}
        Police: {num} people hurt after car crashes into {city} restaurant
        School district in {state} cancels classes after threat on social media
        Family of missing {state} woman pleads for help finding her
        Water main break floods streets in {city}, forcing evacuations
        {state} town mourns firefighter killed while battling a house fire
        Amtrak train derails near {city}; no serious injuries reported
        Mayor of {city} announces plan to tackle homelessness this winter
        """,
        """
        Authorities in {city} said {num} people were taken to a hospital after the driver lost
        control and struck the front of the building shortly after noon on {weekday}.

        Officials in {state} said the threat was posted late {weekday} night and classes would
        resume once police finished searching every building in the district.

        The {age}-year-old firefighter was a {years}-year veteran of the department and is survived
        by his wife and two children, the fire chief said.

        Crews worked through the night to repair the break, and residents in {city} were told to
        boil their water until further notice, city officials said.

        Thousands of residents lined the streets of downtown {city} to honor veterans, as marching
        bands, color guards and vintage military vehicles passed by.
        """,
        age="38|41|44|47|52|55|58",
        years="12|15|18|20|22|25",
    ),
    _topic(
        "news",
        "newspolitics",
        """
        Impeachment inquiry: what to expect as {pol} prepares for public hearings
        {pol} blasts the impeachment inquiry in fiery {weekday} remarks
        Poll: {pol} surges in {state} ahead of the Democratic primary
        {pol} unveils a health care plan that would cost {tril} over a decade
        Senate Republicans split over how to handle an impeachment trial, {pol} says
        {pol} and {pol2} clash over border wall funding in budget talks
        Governor’s race in {state} too close to call as votes are counted
        """,
        """
        House investigators will hear testimony from career diplomats about the administration's
        dealings with Ukraine in the first public hearings of the impeachment inquiry.

        {pol} said the inquiry was driven by politics and accused {pol2} of trying to overturn the
        results of the last election, while Democrats said the facts were damning.

        A new poll of likely voters in {state} shows {pol} gaining ground, with support up {num}
        points since last month as the field of candidates narrows.

        Lawmakers have until the end of next week to pass a spending bill and avert a government
        shutdown, but negotiators remain far apart on money for the border wall.
        """,
        pol=(
            "President Trump|Nancy Pelosi|Mitch McConnell|Adam Schiff|Lindsey Graham|"
            "Elizabeth Warren|Bernie Sanders|Joe Biden|Pete Buttigieg|Kamala Harris|"
            "Michael Bloomberg|Rudy Giuliani|Mike Pompeo|Chuck Schumer|Jim Jordan|Amy Klobuchar"
        ),
        tril="$20.5 trillion|$1.5 trillion|$3 trillion|$750 billion|$34 trillion",
    ),
    _topic(
        "news",
        "newsworld",
        """
        Protesters clash with police in {country} as unrest enters its {nth} week
        {country} declares state of emergency as wildfires spread near major cities
        {leader} calls snap election amid a deepening political crisis
        Earthquake of magnitude {mag} strikes off the coast of {country}
        {leader} and {leader2} meet to discuss trade and security
        Opposition in {country} disputes election results as tensions rise
        Flooding in {country} forces thousands from their homes after days of rain
        """,
        """
        Police fired tear gas and rubber bullets at demonstrators in {country} on {weekday}, and
        dozens were arrested as protests over government corruption spread to new neighborhoods.

        The magnitude {mag} earthquake struck at a depth of about {big} kilometers, according to the
        U.S. Geological Survey, and local officials reported damage to several buildings.

        {leader} met with {leader2} for nearly two hours, and both sides said they had agreed to
        continue talks on tariffs, energy and regional security next month.

        Rescue teams in {country} used boats to reach stranded residents, and officials said the
        flooding had damaged roads, bridges and thousands of acres of farmland.
        """,
        country=(
            "Hong Kong|Bolivia|Chile|Venezuela|Iraq|Lebanon|Iran|Syria|Turkey|Israel|India|"
            "Australia|Brazil|Mexico|Russia|Ukraine|Japan|Spain|France|Germany|Italy|Indonesia|"
            "Colombia|Ecuador"
        ),
        leader=(
            "Boris Johnson|Emmanuel Macron|Angela Merkel|Vladimir Putin|Xi Jinping|"
            "Recep Tayyip Erdoğan|Benjamin Netanyahu|Narendra Modi|Jair Bolsonaro|"
            "Andrés Manuel López Obrador|Justin Trudeau|Volodymyr Zelensky|Shinzo Abe"
        ),
        nth="second|third|fourth|fifth|sixth",
        mag="5.1|5.4|5.8|6.0|6.2|6.5|6.9|7.1|7.4",
    ),
    _topic(
        "news",
        "newscrime",
        """
        Man arrested after hours-long standoff with police in {city} neighborhood
        {city} police searching for suspect in deadly convenience store shooting
        Former {state} teacher sentenced to {big} years in prison
        Woman charged with stealing {money} from elderly neighbors in {city}
        Authorities identify suspect in string of car break-ins across {city}
        Jury finds {state} man guilty of murder in {coldyear} cold case
        Police: teen suspects led officers on high-speed chase through {city}
        """,
        """
        Officers surrounded the home shortly after {hour} p.m. and negotiators spent several hours
        talking with the man before he surrendered, police in {city} said.

        Investigators in {city} released surveillance images of the suspect and asked anyone with
        information about the shooting to call the department's tip line.

        Prosecutors said the defendant used a fake charity to collect money from neighbors over
        {num} years, and a judge ordered full restitution in addition to the prison term.

        DNA evidence that was retested last year linked the suspect to the killing, finally giving
        the victim's family answers after decades of waiting, the district attorney said.
        """,
        hour="1|2|3|4|5|6|7|8|9|10|11",
        coldyear=" | ".join(str(y) for y in range(1979, 2009)),
    ),
    _topic(
        "news",
        "newsscienceandtechnology",
        """
        {gadget} review: the best upgrade yet, with one big catch
        Astronomers discover {num} new moons orbiting {planet}, surprising scientists
        {company} fixes security flaw that exposed millions of user passwords
        SpaceX launches {sats} Starlink satellites on a reused Falcon 9 rocket
        Scientists find evidence of water vapor on Jupiter's icy moon Europa
        {company} is testing a new feature that hides like counts
        How to free up storage on your {gadget} in {num} easy steps
        {company} unveils a cheaper rival to the {gadget} ahead of the holidays
        """,
        """
        Security researchers said the vulnerability could have let attackers read private messages,
        and {company} urged users to install the latest software update.

        The Falcon 9 booster flew for the fourth time and landed on a drone ship in the Atlantic
        Ocean, bringing the constellation to more than {sats} satellites.

        Researchers using the Keck telescope in Hawaii detected the signature of water vapor,
        strengthening the case that the icy moon could harbor conditions suitable for life.

        The {gadget} has a brighter display and a faster processor, but reviewers noted that battery
        life still falls short of rivals after a full day of heavy use.
        """,
        company="Apple|Google|Microsoft|Amazon|Facebook|Samsung|Instagram|Twitter|Intel|Sony",
        gadget=(
            "iPhone 11|Pixel 4|Galaxy Note 10|Surface Pro 7|AirPods Pro|Apple Watch|Echo Dot|"
            "Nintendo Switch Lite|Galaxy Fold|Kindle Paperwhite|MacBook Pro|Fire TV Stick"
        ),
        sats="60|120|180|240",
        planet="Saturn|Jupiter|Neptune|Uranus",
    ),
    _topic(
        "news",
        "newsgoodnews",
        """
        Strangers raise {money} for {city} janitor retiring after {years} years
        Teen mows lawns for free for veterans and seniors in {state}
        Police officer buys boots for homeless man on a freezing night in {city}
        {age}-year-old World War II veteran finally receives high school diploma
        Kindergarten class in {city} surprises beloved crossing guard on her birthday
        Community in {state} rebuilds home for family who lost everything in a fire
        """,
        """
        An online fundraiser started by former students passed {money} in just {num} days, and the
        janitor said he planned to use the money to visit family he had not seen in years.

        The officer said he noticed the man's feet were bare and bleeding, so he drove to a nearby
        store and came back with a new pair of boots and warm socks.

        Friends and family packed the auditorium in {city} as the veteran walked across the stage,
        decades after he left school to enlist in the Army.

        The teenager has mowed more than {big} lawns this year, and neighbors in {state} say his
        kindness has inspired others to volunteer in the community.
        """,
        age="92|94|95|96|97|98|99",
    ),
    _topic(
        "lifestyle",
        "lifestyleroyals",
        """
        {royal} steps out in a stunning coat for Remembrance Sunday service
        {royal} and {royal2} share a rare moment at a charity event
        Royal expert reveals why {royal} skipped the family gathering
        {royal}’s favorite dessert recipe is surprisingly simple to make at home
        {royal} makes surprise visit to a children's hospital in London
        Palace announces {royal} will take on a new patronage next year
        """,
        """
        {royal} wore a tailored navy coat and a poppy brooch to the ceremony at the Cenotaph, where
        members of the royal family gathered to honor the war dead.

        Royal watchers noticed {royal} and {royal2} laughing together during the event, a rare
        public display that quickly spread across social media.

        A palace spokesperson said {royal} was committed to supporting young people's mental health
        and would visit several charities across the country in the spring.

        According to a former palace chef, {royal} often requested the same chocolate biscuit cake,
        a recipe that has been served at royal tea parties for decades.
        """,
        royal=(
            "Prince Harry|Meghan Markle|Prince William|Kate Middleton|Queen Elizabeth|"
            "Prince Charles|Prince Andrew|Princess Charlotte|Prince George|Princess Eugenie|"
            "Zara Tindall|Camilla|Princess Anne|Princess Beatrice"
        ),
    ),
    _topic(
        "lifestyle",
        "lifestylebuzz",
        """
        {num} Thanksgiving traditions that only happen in {state}
        The most popular holiday cookie in {state}, according to Google searches
        {store} shoppers are obsessed with this {num}-pound holiday treat
        Lottery winner in {state} claims {money} jackpot with ticket found in a coat
        The best early Black Friday deals at {store} you can shop right now
        {num} vintage photos that show what life in {city} used to look like
        People in {city} are sharing the weirdest things they found in thrift stores
        """,
        """
        Shoppers have been posting photos of the giant treat on social media since it showed up at
        {store} last week, and several stores in {state} have already sold out.

        The winner told lottery officials in {state} that she found the ticket in a winter coat
        pocket weeks after the drawing and almost threw it away with old receipts.

        From church potlucks to parades, these quirky holiday customs in {state} have been passed
        down for generations and still draw crowds every November.

        Retailers like {store} are starting holiday sales earlier than ever this year, with deep
        discounts on televisions, kitchen appliances and toys well before Thanksgiving.
        """,
        store="Costco|Target|Walmart|Aldi|Trader Joe's|Kohl's|Best Buy|Sam's Club|Home Depot",
    ),
    _topic(
        "lifestyle",
        "lifestyleparenting",
        """
        A {city} mom’s clever hack for getting toddlers to eat vegetables goes viral
        {num} signs your child might be ready to stop napping
        Pediatricians warn parents in {state} about popular baby sleep products
        Dad in {state} shares the bedtime routine that finally got his twins to sleep
        How much screen time is too much for kids under {num}?
        Teachers in {city} reveal the one thing they wish parents would stop doing
        Baby names that are expected to be popular in {nextyear}, from {babyname} to {babyname2}
        """,
        """
        The mother said she started cutting vegetables into fun shapes and letting her toddler help
        in the kitchen, and within {num} weeks mealtime battles had all but disappeared.

        The American Academy of Pediatrics recommends that children under 18 months avoid screens
        other than video chatting, and that parents watch programs with older preschoolers.

        Consumer safety officials said inclined sleepers have been linked to infant deaths, and they
        urged parents to use flat, firm mattresses with no pillows or blankets in the crib.

        Most children stop napping between ages three and five, and experts say a consistent bedtime
        routine can make the transition easier for parents and kids.
        """,
        babyname="Olivia|Liam|Ava|Noah|Isla|Theo|Luna|Milo|Hazel|Ezra|Aurora|Atticus|Nova|Jasper",
    ),
    _topic(
        "lifestyle",
        "lifestylehomeandgarden",
        """
        {num} houseplants that are almost impossible to kill
        How to winterize your garden in {state} before the first hard frost
        How to keep your {plant} alive through the long winter months
        Why your {plant} has yellow leaves, and how to fix it fast
        {designer} shares the secret to a cozy living room this winter
        {designer}’s tips for decluttering your closet before the holidays
        {designer} shows how to decorate a small {city} apartment for the holidays
        The paint colors that will be everywhere in {nextyear}, designers say
        This {city} couple turned a rundown barn into their dream home
        Why you should never prune these {num} shrubs in the fall
        """,
        """
        Snake plants, pothos and ZZ plants tolerate low light and irregular watering, making them
        perfect for beginners or anyone who travels often for work.

        Cutting back perennials, adding a thick layer of mulch and draining garden hoses can protect
        your yard from damage when temperatures drop below freezing.

        Gardeners say the {plant} needs bright, indirect light and should be watered only when the
        top inch of soil is dry, especially once the heat comes on indoors.

        {designer} recommends layering textures like wool throws and linen pillows, and swapping
        bright overhead lights for warm lamps to make rooms feel inviting.

        The couple spent {num} years restoring the barn outside {city}, keeping the original beams
        and adding a chef's kitchen, a loft bedroom and a wraparound porch.
        """,
        designer="Joanna Gaines|Martha Stewart|Marie Kondo|Chip Gaines|Nate Berkus|Bobby Berk",
        plant=(
            "snake plant|pothos|fiddle-leaf fig|monstera|peace lily|ZZ plant|spider plant|orchid|"
            "poinsettia|Christmas cactus|rubber plant|jade plant"
        ),
    ),
    _topic(
        "health",
        "wellness",
        """
        {num} habits that could help you live longer, according to {expert}
        Doctors in {city} explain why you wake up at 3 a.m. every night
        The surprising link between loneliness and heart health in adults over {age}
        What happens to your body when you stop drinking alcohol for {num} weeks
        How people in {state} can beat seasonal depression as the days get shorter
        This simple breathing exercise can lower stress in {num} minutes, {expert} say
        Sleep experts say {temp} degrees is the best temperature for your bedroom
        Is {habit} hurting your sleep? Here's what {expert} say
        {num} signs you're more stressed than you think, according to {expert}
        """,
        """
        Researchers followed more than {thousands} adults for over a decade and found that those who
        kept regular sleep schedules and walked daily had lower rates of chronic disease.

        Psychologists say light therapy, time outdoors and a regular exercise routine can ease
        symptoms of seasonal affective disorder, which affects millions of people each winter.

        Doctors say stress hormones and blood sugar drops can jolt you awake overnight, and cutting
        back on late-night screens and caffeine may help you sleep through.

        After just {num} weeks without alcohol, participants reported better sleep, clearer skin and
        lower blood pressure, according to a small study from British researchers.
        """,
        age="40|50|60|65",
        expert="doctors|cardiologists|researchers|longevity experts|psychologists|sleep doctors",
        temp="60|62|65|67|68",
        habit=(
            "late-night snacking|scrolling in bed|an afternoon coffee|a glass of wine at night|"
            "napping after work|exercising late"
        ),
    ),
    _topic(
        "health",
        "medical",
        """
        New blood test may detect {disease} years before symptoms appear
        CDC reports {big} new cases of {disease} in {state} this month
        Flu season arrives early as hospitals in {state} see a spike in patients
        Doctors warn of rising {disease} rates among younger adults
        FDA approves new treatment for {disease} after promising trials
        {num} early warning signs of {disease} you shouldn't ignore
        Vaping illness death toll rises to {big} nationwide, health officials say
        """,
        """
        In a study of more than {thousands} patients, the experimental test correctly identified
        {disease} in most cases, though researchers cautioned that larger trials are needed.

        Health officials in {state} urged residents to get vaccinated, noting that hospital
        emergency rooms have seen twice as many flu patients as at this time last year.

        The drug slowed the progression of {disease} by about {pct} percent in clinical trials, and
        doctors said it could become available to patients early next year.

        Doctors say persistent fatigue, unexplained weight loss and changes in appetite can be early
        signs of {disease} and should be checked out promptly.
        """,
        disease=(
            "breast cancer|Alzheimer's disease|type 2 diabetes|heart disease|measles|"
            "Lyme disease|colon cancer|Parkinson's disease|hepatitis A|lung cancer|melanoma|"
            "multiple sclerosis|kidney disease|sepsis"
        ),
    ),
    _topic(
        "health",
        "fitness",
        """
        The {num}-minute workout trainers swear by for a stronger core
        I did {reps} {move} every day for a month. Here's what happened
        Best exercises to build muscle after age {age}, according to trainers
        Is walking {steps} steps a day really enough? Experts weigh in
        How to start running in {state} this winter without getting hurt
        The {num}-move kettlebell routine that burns fat without a trip to the gym
        Why {move} might be the most underrated exercise for people over {age}
        A {city} trainer shares the {num}-minute warm-up that prevents injuries
        """,
        """
        Personal trainers recommend planks, dead bugs and bird dogs because they strengthen the deep
        abdominal muscles that protect your lower back during everyday movement.

        Resistance training two or three times a week can slow age-related muscle loss, and experts
        say it's never too late to start lifting lighter weights with good form.

        A study of older women found that those who walked about {steps} steps a day lived longer
        than those who walked less, though benefits leveled off beyond that point.

        Coaches suggest layering moisture-wicking clothes, warming up indoors and shortening your
        stride on icy sidewalks to stay safe while running through the colder months.
        """,
        reps="25|50|100|150",
        move=(
            "planks|squats|lunges|deadlifts|burpees|push-ups|kettlebell swings|jumping jacks|"
            "pull-ups"
        ),
        age="40|50|60|70",
        steps="4,400|5,000|7,500|10,000",
    ),
    _topic(
        "health",
        "nutrition",
        """
        Is {food} actually good for you? Dietitians weigh in
        {num} high-protein breakfasts that keep you full until lunch
        The best foods for better gut health, from {food} to {food2}
        Eating {food} every day may lower blood pressure, study finds
        Keto vs. intermittent fasting: which diet works better for weight loss?
        {num} foods nutritionists never eat, and what they choose instead
        """,
        """
        Registered dietitians say {food} is rich in fiber and healthy fats, but portion size matters
        if you're trying to lose weight or keep blood sugar steady.

        Researchers found that adults who ate {food} most days had modestly lower blood pressure
        after {num} weeks, though the study was funded in part by an industry group.

        Pairing protein with fiber at breakfast slows digestion and helps prevent the mid-morning
        crash that sends many people searching for vending machine snacks.

        Both diets can lead to weight loss in the short term, but nutrition experts say the best
        plan is one you can realistically stick with for years.
        """,
        food=(
            "oatmeal|avocado|salmon|blueberries|Greek yogurt|eggs|almonds|spinach|sweet potatoes|"
            "dark chocolate|green tea|lentils|kale|olive oil|chickpeas|kimchi|walnuts"
        ),
    ),
    _topic(
        "foodanddrink",
        "recipes",
        """
        The best {dish} recipe for Thanksgiving, tested {num} ways
        {num} easy slow-cooker dinners for busy weeknights, starting with {dish}
        How to make {dish} ahead of time without losing flavor
        Grandma’s {dish} recipe is the only one you'll ever need
        This one-pan {dish} is ready in under 30 minutes
        Make-ahead {dish} that will impress your holiday guests
        """,
        """
        This {dish} comes together with pantry staples, and you can assemble it up to {num} days in
        advance, then bake it just before guests arrive for dinner.

        Our test kitchen tried the recipe with butter, shortening and a mix of both, and the
        all-butter version produced the flakiest, most flavorful crust every time.

        Brown the meat first and let the slow cooker do the rest; these hearty dinners need less
        than {big} minutes of hands-on prep and feed a family of four.

        A splash of cider vinegar and a pinch of smoked paprika give this {dish} a depth of flavor
        that tastes like it simmered all afternoon.
        """,
        dish=(
            "pumpkin pie|beef chili|chicken pot pie|mac and cheese|lasagna|apple crisp|"
            "green bean casserole|pecan pie|butternut squash soup|crème brûlée|enchiladas|"
            "sweet potato casserole|banana bread|jalapeño cornbread|pot roast|meatloaf|"
            "chicken noodle soup|cinnamon rolls|shepherd's pie|cornbread stuffing|beef stew|"
            "cranberry sauce"
        ),
    ),
    _topic(
        "foodanddrink",
        "restaurantsandnews",
        """
        {chain} is bringing back a fan-favorite menu item next week
        {chain} to close dozens of locations across the country
        {chain} chicken sandwich returns, and the lines are back too
        The best new restaurants in {city} to try this fall
        Health inspectors shut down {city} restaurant after finding roaches
        {chain} opens first location in {city} with a drive-thru only design
        {chain} is giving away free food to veterans this week
        """,
        """
        {chain} said the limited-time item would be available at participating restaurants
        nationwide starting {weekday}, while supplies last, and customers can order through its app.

        The company said the closures are part of a plan to focus on higher-performing stores, and
        employees at affected locations will be offered jobs at nearby restaurants.

        Inspectors in {city} cited the kitchen for {num} critical violations, including improper
        food temperatures, and the restaurant can reopen after passing a follow-up inspection.

        From a wood-fired pizza spot to a tiny taqueria, these new openings in {city} are worth a
        visit, according to local food critics.
        """,
        chain=(
            "Chick-fil-A|Popeyes|McDonald's|Taco Bell|Olive Garden|Chipotle|Starbucks|Dunkin'|"
            "Panera Bread|Subway|Wendy's|Burger King|Red Lobster|Cracker Barrel|In-N-Out|"
            "Krispy Kreme|Applebee's|Domino's|Arby's|Sonic"
        ),
    ),
    _topic(
        "foodanddrink",
        "foodnews",
        """
        Recall: {brand} pulls {product} over possible listeria contamination
        {store} Thanksgiving pie is back, and it's bigger than ever
        {store} shoppers can get a free turkey this year. Here's how
        The {num} best grocery store frozen pizzas, ranked by taste testers
        USDA says romaine lettuce from {state} may be contaminated with E. coli
        {brand} recalls {product} sold in {num} states over undeclared allergens
        """,
        """
        The company is recalling about {thousands} pounds of {product} sold in {state} and
        neighboring states, and customers should return the packages for a full refund.

        Federal health officials said {big} people in {num} states had fallen ill, and they urged
        consumers to throw away any romaine lettuce if they can't confirm where it was grown.

        {store} said shoppers who spend at least {dollars} before Thanksgiving can take home a free
        turkey, and the deal applies to in-store and online orders.

        Our taste testers rated {num} frozen pizzas on crust, sauce and cheese, and a budget option
        from {store} beat several pricier national brands.
        """,
        brand=(
            "Tyson|Kraft|Kellogg's|General Mills|Hormel|Nestlé|Conagra|Smucker's|Campbell's|"
            "Hostess|Pilgrim's Pride|Dole"
        ),
        product=(
            "chicken nuggets|frozen burritos|breakfast sausage|canned soup|granola bars|"
            "salad kits|ground beef|peanut butter|cheese dip|bagged spinach|deli ham|frozen waffles"
        ),
        store=(
            "Costco|Aldi|Walmart|Kroger|Trader Joe's|Publix|Whole Foods|ShopRite|Wegmans|H-E-B|"
            "Safeway|Meijer"
        ),
    ),
    _topic(
        "travel",
        "travelnews",
        """
        {airline} flight diverted after unruly passenger tries to open a door
        Thanksgiving travel: AAA expects {million} million people on the road
        {airport} to get a new terminal as part of a {bil} renovation
        {airline} adds nonstop flights from {city} to Hawaii next spring
        TSA finds record number of guns in carry-on bags at {airport}
        Boeing 737 Max grounding forces {airline} to cancel more flights
        Passengers stuck on the tarmac for {num} hours at {airport}
        """,
        """
        The {airline} flight from {city} landed safely after crew members and passengers restrained
        the man, and police met the plane at the gate, the airline said.

        AAA predicts about {million} million Americans will travel at least 50 miles over the
        holiday weekend, the second-highest number on record, with most of them driving.

        The new routes from {city} will begin in the spring, and introductory fares start at
        {dollars} each way for travelers who book by the end of the month.

        {airline} said it would keep the grounded jets off its schedule until at least March,
        leading to about {big} cancellations each day during the holiday season.
        """,
        airline=(
            "American Airlines|Delta|United|Southwest|JetBlue|Alaska Airlines|Spirit Airlines|"
            "Frontier|Allegiant|Hawaiian Airlines"
        ),
        airport=(
            "LaGuardia|JFK|O'Hare|LAX|Denver International|Hartsfield-Jackson|Newark|Sea-Tac|"
            "Logan|Miami International|DFW|Reagan National"
        ),
        million="49|50|55|31|26",
    ),
    _topic(
        "travel",
        "traveltripideas",
        """
        The {num} most charming small towns to visit this winter
        Why {place} is the perfect destination for a winter getaway
        How to see {place} on a budget, according to travel experts
        The most beautiful train ride in America runs from {place} to {place2}
        {num} underrated national parks you should visit before the crowds find them
        A long weekend in {place}: where to stay, eat and explore
        The best Christmas markets outside of Europe, including one in {place}
        """,
        """
        Fewer crowds, lower hotel rates and snow-dusted scenery make {place} an ideal trip in the
        off-season, and many restaurants and tours stay open year-round.

        Travel writers recommend booking a cabin near {place} at least {num} months in advance and
        spending mornings on scenic trails before the tour buses arrive.

        From historic inns to quiet hot springs, these small towns offer holiday lights, cozy cafes
        and plenty of outdoor adventure without big-city prices.

        Spend the first day exploring {place} on foot, then rent a car to visit nearby wineries,
        lookout points and local markets that most visitors never find.
        """,
        place=(
            "Yellowstone|the Grand Canyon|Napa Valley|Sedona|Santa Fe|Savannah|Charleston|"
            "Key West|Maui|Iceland|Lisbon|Kyoto|Banff|Costa Rica|the Scottish Highlands|Tulum|"
            "Montréal|Québec City|Cape Cod|the Smoky Mountains|Lake Tahoe|Big Sur|Zion|Asheville"
        ),
    ),
    _topic(
        "autos",
        "autosnews",
        """
        {maker} recalls {thousands} vehicles over faulty airbag inflators
        {maker} to cut production at {city} assembly plant amid slowing sales
        {car} recalled over a brake issue that could increase crash risk
        Gas prices in {state} drop ahead of the Thanksgiving travel rush
        {maker} reveals electric SUV to take on Tesla at the LA Auto Show
        {car} named best family vehicle of the year by consumer group
        """,
        """
        {maker} said the recall covers about {thousands} vehicles built over the past two model
        years, and dealers will replace the affected parts free of charge.

        The automaker said it will eliminate a shift at its {city} plant early next year as demand
        for sedans continues to fall and buyers shift to pickups and crossovers.

        The average price of regular gasoline in {state} fell {cents} cents over the past week,
        according to GasBuddy, and analysts expect prices to keep easing into December.

        The {car} earned top marks for crash safety, cargo space and fuel economy, beating {num}
        other models in the same price range, according to the testers.
        """,
        maker=(
            "Ford|Chevrolet|Toyota|Honda|Tesla|Nissan|Hyundai|Kia|Subaru|Jeep|Ram|GMC|BMW|"
            "Mercedes-Benz|Audi|Volkswagen|Mazda|Volvo|Porsche|Lincoln|Cadillac"
        ),
        car=_CARS,
        cents="3|4|5|6|7|8|9|11|12",
    ),
    _topic(
        "autos",
        "autosenthusiasts",
        """
        This restored 1969 {classic} just sold for {price} at auction
        Driving the {car}: more power, better handling, same old problem
        Barn find: {classic} discovered after {years} years in storage
        The {num} coolest custom builds we saw at SEMA this year
        Why the manual transmission {car} is already a future classic
        Watch a modified {car} hit 180 mph on a closed runway
        """,
        """
        The numbers-matching {classic} was restored by a shop in {state} over {num} years, and
        bidding climbed quickly before the hammer fell at {price}, well above the estimate.

        The new engine in the {car} delivers noticeably more horsepower and the chassis feels
        sharper on back roads, but the infotainment system remains slow and frustrating.

        The car had been parked in a barn in {state} since the 1970s, and its new owner plans to
        keep the original paint and patina instead of doing a full restoration.

        Builders brought everything from lifted overland trucks to electric-swapped classics to the
        show floor in Las Vegas, and these {num} builds stood out from the rest.
        """,
        classic=(
            "Ford Mustang Boss 429|Chevrolet Camaro Z/28|Dodge Charger R/T|Pontiac GTO|"
            "Plymouth Road Runner|Shelby GT500|Chevrolet Chevelle SS|Volkswagen Beetle|"
            "Porsche 911S|Jaguar E-Type|Dodge Challenger R/T|Plymouth Barracuda"
        ),
        car=_CARS,
        price="$85,000|$132,000|$210,000|$440,000|$1.1 million|$67,500|$96,000",
    ),
    _topic(
        "autos",
        "autosresearch",
        """
        The {num} most reliable used cars you can buy for under $15,000
        Should you lease or buy your next car? How to decide in {nextyear}
        {car} vs. {car2}: which one is the better buy this year?
        These cars lose the most value in the first {num} years of ownership
        How to get the best deal on a new {car} during year-end sales
        Cheapest cars to insure in {state}, according to a new report
        """,
        """
        Consumer Reports ranked the models based on owner surveys, and compact sedans from Toyota,
        Honda and Mazda dominated the list thanks to low repair costs.

        Leasing usually means lower monthly payments, but buyers who keep a car for more than {num}
        years almost always come out ahead, financial experts say.

        We compared the {car} and the {car2} on price, cargo space, fuel economy and safety ratings,
        and one model came out ahead in most categories.

        Dealers are eager to clear out inventory before the new model year, so shoppers who
        negotiate for a {car} in late December can often save thousands.
        """,
        car=_CARS,
    ),
    _topic(
        "weather",
        "weathertopstories",
        """
        Arctic blast brings record cold temperatures to {state} this week
        Winter storm could dump {inches} inches of snow on {city} by {weekday}
        First snow of the season snarls the morning commute in {city}
        Freeze warning issued for much of {state} as temperatures plunge
        Forecast: Thanksgiving week could bring messy travel across {state}
        Wind chills below zero expected in {city} overnight into {weekday}
        """,
        """
        Forecasters in {city} said temperatures could drop into the single digits by {weekday}
        morning, breaking records that have stood for decades, and urged residents to protect pipes.

        The National Weather Service issued a winter storm warning for {state}, with {inches} inches
        of snow possible and gusty winds creating whiteout conditions on highways.

        Crews treated roads overnight, but dozens of crashes were reported during the morning
        commute as the first snowfall of the season coated {city} in slush.

        A strong cold front will sweep across the Plains and Midwest, bringing rain, sleet and snow
        to {state} just as millions of people begin holiday travel.
        """,
        inches="4|5|6|7|8|10|12|14",
    ),
    _topic(
        "weather",
        "weathernews",
        """
        Why this winter could be snowier than normal in {state}, according to forecasters
        Farmer’s Almanac predicts a frigid winter for {state} and the Great Lakes
        Wildfire near {city} forces evacuations as dry winds return
        What is a polar vortex, and why will it make {city} so cold?
        Atlantic hurricane season ends with {storms} named storms, above average
        Drought conditions worsen across {state} despite recent rain
        """,
        """
        The Old Farmer's Almanac is calling for a colder and snowier winter than usual across
        {state}, though meteorologists caution that long-range forecasts are unreliable.

        Fire crews near {city} battled the flames through the night as winds gusted to {big} mph,
        and officials ordered evacuations for several neighborhoods in the foothills.

        Climate scientists say a weakening polar vortex can let frigid Arctic air spill south into
        the United States, bringing dangerous cold for days at a time.

        The season produced {storms} named storms, including several that rapidly intensified, and
        forecasters said warm ocean temperatures played a major role.
        """,
        storms="15|16|18|20",
    ),
    _topic(
        "tv",
        "tvnews",
        """
        {show} recap: a shocking elimination leaves fans stunned on {weekday} night
        {network} renews {show} for a {season} season after a ratings surge
        {network} launch: everything you can stream this week, including {show}
        {show} star teases a major twist in the upcoming finale
        Ratings: {show} wins the night for {network} on {weekday}
        {show} canceled after {num} seasons, {network} confirms in a statement
        Everything new on {network} this December, from holiday movies to {show}
        """,
        """
        Fans took to social media after {weekday} night's episode of {show}, with many calling the
        elimination the biggest upset of the season so far.

        {network} confirmed that {show} will return next fall, citing strong ratings among younger
        viewers and a big jump in streaming audiences.

        The season finale of {show} will air in December, and the cast has hinted that at least one
        main character may not make it to the end.

        Alongside {show}, subscribers can stream dozens of new holiday specials, documentaries and
        films throughout the month on {network}, with more titles arriving before the new year.
        """,
        show=(
            "The Voice|Dancing With the Stars|Grey's Anatomy|This Is Us|The Mandalorian|The Crown|"
            "Saturday Night Live|The Bachelor|Jeopardy!|Stranger Things|Survivor|"
            "The Masked Singer|Yellowstone|The Walking Dead|The Good Place|Big Little Lies|"
            "Chicago Fire|NCIS|Outlander|Modern Family"
        ),
        network="NBC|ABC|CBS|Fox|Netflix|HBO|Disney+|Hulu|Amazon Prime Video|Apple TV+",
        season="fifth|sixth|seventh|10th|third|fourth",
    ),
    _topic(
        "tv",
        "tv-celebrity",
        """
        {tvstar} opens up about a health scare in an emotional interview
        {tvstar} returns to the show after a {num}-week break
        {tvstar} shares a rare photo with family on social media
        {tvstar} and {tvstar2} spark feud rumors with cryptic posts
        {tvstar} reveals the best advice ever received from a mentor
        Fans rally behind {tvstar} after an emotional on-air moment
        """,
        """
        {tvstar} told viewers that doctors had found the problem early and that treatment was going
        well, thanking fans for the outpouring of support in recent weeks.

        The photo posted by {tvstar} shows the family gathered around a holiday table, and it racked
        up more than a million likes within {num} hours.

        Fans noticed that {tvstar} and {tvstar2} unfollowed each other on Instagram, though
        representatives for both stars declined to comment on the rumors.

        {tvstar} teared up while talking about a longtime colleague during the show's opening
        segment, and the studio audience gave a standing ovation.
        """,
        tvstar=(
            "Kelly Clarkson|Ellen DeGeneres|Jimmy Fallon|Jimmy Kimmel|Stephen Colbert|"
            "Alex Trebek|Chrissy Teigen|Simon Cowell|Gwen Stefani|Blake Shelton|Julianne Hough|"
            "Savannah Guthrie|Hoda Kotb|Al Roker|Khloé Kardashian|Steve Harvey|Wendy Williams|"
            "Trevor Noah|Tyra Banks|Ryan Seacrest"
        ),
    ),
    _topic(
        "movies",
        "movienews",
        """
        Box office: {movie} wins the weekend with a ${boxoffice} million debut
        {movie} review: a crowd-pleaser that earns every twist
        {director} defends his comments about superhero movies
        Oscars predictions: {movie} emerges as a best picture front-runner
        New {movie} trailer reveals a first look at the villain
        {director} reveals the scene that almost got cut from {movie}
        """,
        """
        {movie} earned an estimated ${boxoffice} million in North America over the weekend, beating
        industry projections and outpacing several other new releases.

        Critics praised {movie} for its sharp script and strong ensemble cast, and early audience
        scores suggest strong word of mouth heading into the holidays.

        {director} said in an interview that theaters are being overtaken by franchise films, and
        that original stories are increasingly pushed to streaming services.

        Awards voters have been buzzing about {movie} since its festival premiere, and analysts now
        see it competing for best picture and best director nominations.
        """,
        movie=(
            "Frozen 2|Joker|Ford v Ferrari|Midway|Doctor Sleep|The Irishman|Knives Out|"
            "Charlie's Angels|Star Wars: The Rise of Skywalker|Terminator: Dark Fate|"
            "Last Christmas|Parasite|Jojo Rabbit|Marriage Story|Harriet|Little Women|"
            "Zombieland: Double Tap|1917|Once Upon a Time in Hollywood|Jumanji: The Next Level"
        ),
        director=(
            "Martin Scorsese|Quentin Tarantino|Greta Gerwig|Rian Johnson|J.J. Abrams|"
            "Bong Joon-ho|Todd Phillips|James Mangold|Taika Waititi|Noah Baumbach|Sam Mendes"
        ),
        boxoffice="17.5|28|34|41|55|96|130|8.4|12",
    ),
    _topic(
        "movies",
        "movies-celebrity",
        """
        {actor} opens up about the most difficult role of a long career
        {actor} and {actor2} reunite at a star-studded premiere
        {actor} surprises fans at a movie theater in {city}
        {actor} is unrecognizable in first photos from the new film set
        {actor} donates {money} to wildfire relief efforts in California
        {actor} to receive lifetime achievement honor at film festival
        """,
        """
        {actor} said in a magazine interview that preparing for the part took months of training,
        and admitted to struggling with self-doubt during the shoot.

        {actor} and {actor2} posed together on the red carpet in Los Angeles, delighting fans who
        have hoped for years that the former co-stars would work together again.

        Moviegoers in {city} were stunned when {actor} walked into the theater before a screening,
        thanked the audience and stayed to take selfies in the lobby.

        The donation from {actor} will help families who lost their homes buy food, clothing and
        temporary housing, according to the charity.
        """,
        actor=(
            "Tom Hanks|Jennifer Aniston|Brad Pitt|Leonardo DiCaprio|Scarlett Johansson|"
            "Margot Robbie|Keanu Reeves|Jennifer Lopez|Will Smith|Dwayne Johnson|"
            "Angelina Jolie|Ryan Reynolds|Blake Lively|Chris Hemsworth|Zendaya|"
            "Timothée Chalamet|Joaquin Phoenix|Renée Zellweger|Adam Driver|Meryl Streep"
        ),
    ),
    _topic(
        "music",
        "musicnews",
        """
        {award}: {artist} wins big as {artist2} steals the show
        {artist} announces {nextyear} world tour with a stop in {city}
        {artist} drops a surprise album, and fans are losing it
        {artist} tops the Billboard Hot 100 for the {nth} straight week
        {award} nominations: snubs and surprises, from {artist} to {artist2}
        {artist} cancels {city} concert due to illness, reschedules for spring
        """,
        """
        {artist} took home {num} trophies at the {award}, while a show-stopping performance by
        {artist2} earned a standing ovation from the crowd inside the arena.

        The tour kicks off next summer and includes {big} dates across North America and Europe, and
        presale tickets for fans go on sale {weekday} morning.

        {artist} released the album at midnight without any warning, and it quickly climbed to the
        top of streaming charts in more than {big} countries.

        The {city} show has been postponed on doctor's orders, and tickets will be honored at a
        rescheduled date that will be announced soon, a representative said.
        """,
        artist=_ARTISTS,
        award=_AWARDS,
        nth="second|third|fourth|fifth|sixth|seventh",
    ),
    _topic(
        "music",
        "music-celebrity",
        """
        {artist} responds to rumors about a secret engagement
        {artist} and {artist2} spotted together on a dinner date in {city}
        {artist} opens up about anxiety and fame in a candid interview
        {artist} celebrates birthday with lavish party attended by famous friends
        {artist} shows off a bold new look on the {award} red carpet
        Inside {artist}’s new {price} mansion in Los Angeles
        """,
        """
        {artist} addressed the speculation in an Instagram story, telling fans not to believe
        everything they read online and asking for privacy during a busy year.

        Photos show {artist} and {artist2} leaving a restaurant in {city} together late on
        {weekday}, fueling rumors of a romance between the two singers.

        {artist} said therapy and time away from social media have helped, and encouraged young fans
        to speak up if they are struggling with their mental health.

        The {price} home features a screening room, a recording studio and sweeping canyon views,
        according to real estate records reviewed by reporters.
        """,
        artist=_ARTISTS,
        award=_AWARDS,
        price="$8.5 million|$12 million|$16.9 million|$25 million|$4.2 million",
    ),
    _topic(
        "video",
        "viral",
        """
        Video shows driver's narrow escape as truck flips on {state} highway
        Watch this {age}-year-old grandma absolutely crush a dance challenge
        Man's epic marriage proposal at {city} hockey game goes viral
        Doorbell camera captures delivery driver's hilarious reaction in {city}
        Watch a skier outrun an avalanche in breathtaking helmet-cam footage
        Toddler's reaction to the first snowfall in {city} is pure joy
        Kid's half-court trick shot at {city} game has millions watching
        """,
        """
        The dashcam video, shared thousands of times online, shows the truck rolling across {num}
        lanes before the driver climbs out of the wreck with only minor scrapes.

        The clip, filmed at a family wedding in {city}, has been viewed more than {num} million
        times and landed the grandmother an invitation to appear on a talk show.

        Doorbell cameras have become a surprise source of viral entertainment, and this clip of a
        delivery driver dancing on a porch in {state} is the latest internet hit.

        The skier said he heard a loud crack before the snow gave way, and his helmet camera
        captured the terrifying moments as he sped down the mountain to safety.
        """,
        age="71|76|82|85|88|90",
    ),
    _topic(
        "video",
        "animals",
        """
        Watch: {animal} rescued from icy pond by quick-thinking firefighters
        This {animal} has the most adorable reaction to seeing snow for the first time
        {animal} and {animal2} form an unlikely friendship at {state} sanctuary
        Shelter {animal} finally adopted after waiting {big} days for a home
        {animal} wanders into {city} grocery store, stunning shoppers
        Trail camera catches a {animal} doing something unexpected in the {state} woods
        """,
        """
        Firefighters in {state} used a rope and a small boat to reach the {animal}, which had fallen
        through thin ice, and it was warmed up and returned to its grateful owners.

        Staff at the {state} sanctuary say the {animal} and the {animal2} have been inseparable
        since they met, napping together every afternoon in the barn.

        The {animal} spent {big} days at the shelter before a family in {city} saw a post on social
        media and drove over an hour to adopt the gentle animal.

        Shoppers in {city} pulled out their phones as the {animal} strolled past the produce section
        before wildlife officers gently guided it back outside.
        """,
        animal=(
            "dog|puppy|kitten|golden retriever|baby elephant|sea otter|deer|black bear|raccoon|"
            "horse|owl|penguin|goat|pit bull|bald eagle|moose|husky|donkey"
        ),
    ),
    _topic(
        "entertainment",
        "celebrity",
        """
        {celeb} and {celeb2} make their red carpet debut as a couple
        {celeb} shows off a dramatic new hair color on Instagram
        {celeb} responds to critics after a controversial post
        {celeb} launches a new beauty line, and it's already selling out
        {celeb} marks {num}-year anniversary with a sweet tribute
        {celeb} and {celeb2} spotted house hunting in Beverly Hills
        """,
        """
        {celeb} and {celeb2} held hands as they arrived at the gala in New York, confirming months
        of speculation that the two had been quietly dating.

        {celeb} debuted the new look in a selfie on Instagram, and fans flooded the comments with
        praise, with one calling it the best transformation of the year.

        The collection from {celeb} includes lip kits, highlighters and a skincare set, and several
        products sold out within {num} hours of the online launch.

        {celeb} shared a series of throwback photos and a heartfelt message about love and patience
        to celebrate the anniversary with family and friends.
        """,
        celeb=(
            "Kim Kardashian|Kanye West|Jennifer Lopez|Alex Rodriguez|Justin Bieber|Hailey Bieber|"
            "Miley Cyrus|Kylie Jenner|Travis Scott|Gigi Hadid|Bella Hadid|Paris Hilton|"
            "Jessica Simpson|Priyanka Chopra|Nick Jonas|Kelly Ripa|Gwyneth Paltrow|Sofía Vergara|"
            "Kourtney Kardashian|Rihanna"
        ),
    ),
)

# Share of articles by category, roughly MIND's mix: news and sports dominate.
CATEGORY_WEIGHT = {"news": 1.5, "sports": 1.2, "finance": 1.0, "lifestyle": 1.0, "health": 0.9}
OTHER_CATEGORY_WEIGHT = 0.8
# Relative activity by hour of day: quiet at night, peaks in the morning and the evening.
HOURLY_ACTIVITY = (
    *(0.3, 0.2, 0.15, 0.1, 0.15, 0.3, 0.7, 1.1, 1.3, 1.2, 1.1, 1.0),  # midnight to 11 AM
    *(1.1, 1.0, 0.9, 0.9, 1.0, 1.1, 1.2, 1.3, 1.2, 1.0, 0.8, 0.5),  # noon to 11 PM
)
SLOT = re.compile(r"\{(\w+)\}")
# Slots too common to tie an abstract to its title.
GENERIC_SLOTS = frozenset({"num", "big", "pct", "smallpct", "weekday", "nextyear", "years"})
TITLE_WORDS = (8, 16)
ABSTRACT_WORDS = (20, 40)
URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass
class News:
    """All articles of the corpus; arrays are indexed by article number."""

    ids: list[str]
    topic: np.ndarray
    day: np.ndarray
    quality: np.ndarray
    lines: list[str]
    write_rank: np.ndarray  # position in news.tsv, so the files are not grouped by day


@dataclass
class Users:
    ids: list[str]
    affinity: np.ndarray  # [users, topics], rows sum to 1: the latent interests
    activity: np.ndarray  # probability that an impression belongs to each user
    history: list[np.ndarray]  # article numbers, oldest first


@dataclass
class Impression:
    user: int
    day: int
    second: int
    candidates: np.ndarray
    labels: np.ndarray


def topic_prior() -> np.ndarray:
    """Share of articles (and of user interests) per topic."""
    w = np.array([CATEGORY_WEIGHT.get(t.category, OTHER_CATEGORY_WEIGHT) for t in TOPICS])
    return w / w.sum()


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _fill(template: str, topic: Topic, chosen: dict[str, str], rng: np.random.Generator) -> str:
    """Fills {slot} placeholders; `chosen` keeps title and abstract about the same entities.

    A trailing digit asks for a different value of the same slot: {team} beat {team2}.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in chosen:
            base = name.rstrip("0123456789")
            pool = topic.slots.get(base) or GLOBAL_SLOTS[base]
            taken = [v for k, v in chosen.items() if k.rstrip("0123456789") == base]
            chosen[name] = _pick(rng, [v for v in pool if v not in taken])
        return chosen[name]

    return SLOT.sub(value, template)


def _in_range(text: str, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= len(text.split()) <= bounds[1]


def _related(templates: tuple[str, ...], chosen: dict[str, str]) -> list[str]:
    """Abstract templates that mention an entity the title named (so both tell one story)."""
    named = set(chosen) - GENERIC_SLOTS
    related = [t for t in templates if named & set(SLOT.findall(t))]
    return related or list(templates)


def _headline(topic: Topic, rng: np.random.Generator, seen: set[str]) -> tuple[str, str]:
    """A new (title, abstract) pair for the topic, never repeating an earlier title."""
    for _ in range(200):
        chosen: dict[str, str] = {}
        title = _fill(_pick(rng, list(topic.titles)), topic, chosen, rng)
        if title in seen or not _in_range(title, TITLE_WORDS):
            continue
        abstract = _fill(_pick(rng, _related(topic.abstracts, chosen)), topic, chosen, rng)
        if _in_range(abstract, ABSTRACT_WORDS):
            seen.add(title)
            return title, abstract
    raise RuntimeError(f"{topic.subcategory}: templates cannot make another distinct title")


def _unique_codes(rng: np.random.Generator, n: int) -> list[str]:
    """MIND-style URL codes (AA + 5 characters), all distinct, in draw order."""
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < n:
        code = "AA" + "".join(URL_ALPHABET[i] for i in rng.integers(len(URL_ALPHABET), size=5))
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes


def make_news(rng: np.random.Generator) -> News:
    day = np.concatenate(
        [
            np.sort(rng.integers(-ARCHIVE_DAYS, 0, size=ARCHIVE_NEWS)),
            np.repeat(np.arange(TRAIN_DAYS), NEWS_PER_TRAIN_DAY),
            np.full(DEV_DAY_NEWS, DEV_DAY),
        ]
    )
    n = len(day)
    topic = rng.choice(len(TOPICS), size=n, p=topic_prior())
    quality = rng.standard_normal(n)
    numbers = rng.choice(np.arange(1000, 10000), size=n, replace=False)
    ids = [f"N{k}" for k in numbers]
    codes = _unique_codes(rng, n)
    seen: set[str] = set()
    lines = []
    for i in range(n):
        t = TOPICS[topic[i]]
        title, abstract = _headline(t, rng, seen)
        url = f"https://assets.msn.com/labs/mind/{codes[i]}.html"
        lines.append(
            "\t".join([ids[i], t.category, t.subcategory, title, abstract, url, "[]", "[]"])
        )
    return News(ids, topic, day, quality, lines, rng.permutation(n))


def _interests(rng: np.random.Generator, prior: np.ndarray, same: np.ndarray) -> np.ndarray:
    """A sparse interest vector: 2-4 favourite topics, some spill-over to their categories."""
    k = int(rng.choice([2, 3, 4], p=[0.35, 0.4, 0.25]))
    favourites = rng.choice(len(prior), size=k, replace=False, p=prior)
    strong = np.zeros(len(prior))
    strong[favourites] = rng.dirichlet(np.ones(k))
    # Someone who follows the NFL is mildly interested in the rest of sports too.
    spill = (strong / same.sum(axis=1)) @ same
    return 0.8 * strong + 0.15 * spill + 0.05 / len(prior)


def _history(
    rng: np.random.Generator, affinity: np.ndarray, news: News, archive: list[np.ndarray]
) -> np.ndarray:
    """Past clicks, oldest first: mostly from the user's interests, better articles favoured."""
    if rng.random() < EMPTY_HISTORY_SHARE:
        return np.zeros(0, dtype=np.int64)
    length = HISTORY_RANGE[0] + int((HISTORY_RANGE[1] - HISTORY_RANGE[0]) * rng.beta(1.0, 4.5))
    p = (1 - HISTORY_NOISE) * affinity + HISTORY_NOISE * topic_prior()
    counts = np.bincount(rng.choice(len(TOPICS), size=length, p=p), minlength=len(TOPICS))
    picked = []
    for t in np.flatnonzero(counts):
        w = np.exp(GAMMA * news.quality[archive[t]])
        take = min(int(counts[t]), len(archive[t]))
        picked.append(rng.choice(archive[t], size=take, replace=False, p=w / w.sum()))
    items = np.concatenate(picked)
    return items[np.lexsort((items, news.day[items]))]


def make_users(rng: np.random.Generator, news: News) -> Users:
    prior = topic_prior()
    cats = np.array([t.category for t in TOPICS])
    same = (cats[:, None] == cats[None, :]).astype(float)
    affinity = np.stack([_interests(rng, prior, same) for _ in range(N_USERS)])
    archive = [np.flatnonzero((news.topic == t) & (news.day < 0)) for t in range(len(TOPICS))]
    history = [_history(rng, affinity[u], news, archive) for u in range(N_USERS)]
    activity = rng.lognormal(0.0, 0.5, size=N_USERS)
    numbers = rng.choice(np.arange(100, 95000), size=N_USERS, replace=False)
    return Users([f"U{k}" for k in numbers], affinity, activity / activity.sum(), history)


def _recent(news: News, day: int, recency: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Articles that can be shown on `day` and their sampling weights (newer weigh more)."""
    lag = day - news.day
    pool = np.flatnonzero((lag >= 0) & (lag < len(recency)))
    return pool, np.asarray(recency)[len(recency) - 1 - lag[pool]]


def _candidates(
    rng: np.random.Generator, recent: tuple[np.ndarray, np.ndarray], history: np.ndarray
) -> np.ndarray:
    pool, weight = recent
    # An article the user already clicked is not shown again.
    keep = ~np.isin(pool, history)
    pool, weight = pool[keep], weight[keep]
    size = int(rng.integers(CANDIDATES_RANGE[0], CANDIDATES_RANGE[1] + 1))
    return rng.choice(pool, size=size, replace=False, p=weight / weight.sum())


def _clicks(
    rng: np.random.Generator, affinity: np.ndarray, news: News, candidates: np.ndarray
) -> np.ndarray:
    """Labels for one impression: the top-K candidates by interest + quality + Gumbel noise."""
    utility = BETA * np.log(affinity[news.topic[candidates]]) + GAMMA * news.quality[candidates]
    utility = utility + rng.gumbel(size=len(candidates))
    k = int(rng.choice(CLICKS_PER_IMPRESSION[0], p=CLICKS_PER_IMPRESSION[1]))
    labels = np.zeros(len(candidates), dtype=np.int64)
    labels[np.argsort(-utility, kind="stable")[:k]] = 1
    return labels


def make_impressions(
    rng: np.random.Generator,
    news: News,
    users: Users,
    count: int,
    days: tuple[int, ...],
    recency: tuple[float, ...],
) -> list[Impression]:
    hours = np.asarray(HOURLY_ACTIVITY) / sum(HOURLY_ACTIVITY)
    recent = {day: _recent(news, day, recency) for day in days}
    out = []
    for _ in range(count):
        u = int(rng.choice(N_USERS, p=users.activity))
        day = int(days[int(rng.integers(len(days)))])
        second = int(rng.choice(24, p=hours)) * 3600 + int(rng.integers(3600))
        cands = _candidates(rng, recent[day], users.history[u])
        out.append(Impression(u, day, second, cands, _clicks(rng, users.affinity[u], news, cands)))
    return out


def mind_time(day: int, second: int) -> str:
    """MIND's timestamp format: 11/11/2019 9:05:07 AM (no zero padding of month, day, hour)."""
    d = FIRST_DAY + timedelta(days=day)
    hour, rest = divmod(second, 3600)
    minute, sec = divmod(rest, 60)
    suffix = "AM" if hour < 12 else "PM"
    return f"{d.month}/{d.day}/{d.year} {hour % 12 or 12}:{minute:02d}:{sec:02d} {suffix}"


def _behavior_line(number: int, imp: Impression, news: News, users: Users) -> str:
    history = " ".join(news.ids[i] for i in users.history[imp.user])
    shown = " ".join(f"{news.ids[c]}-{y}" for c, y in zip(imp.candidates, imp.labels, strict=True))
    when = mind_time(imp.day, imp.second)
    return f"{number}\t{users.ids[imp.user]}\t{when}\t{history}\t{shown}"


def referenced(impressions: list[Impression], users: Users) -> np.ndarray:
    """Article numbers a split's behaviors mention (histories and candidates), sorted."""
    parts = [users.history[imp.user] for imp in impressions]
    parts += [imp.candidates for imp in impressions]
    return np.unique(np.concatenate(parts))


def write_split(folder: Path, impressions: list[Impression], news: News, users: Users) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    used = referenced(impressions, users)
    used = used[np.argsort(news.write_rank[used], kind="stable")]
    _write_lines(folder / "news.tsv", [news.lines[i] for i in used])
    lines = [_behavior_line(n, imp, news, users) for n, imp in enumerate(impressions, start=1)]
    _write_lines(folder / "behaviors.tsv", lines)


def _write_lines(path: Path, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def impression_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Share of (clicked, skipped) pairs ranked correctly; ties count half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def oracle_auc(impressions: list[Impression], news: News, users: Users) -> float:
    """Mean per-impression AUC of scoring candidates by the user's true topic affinity."""
    aucs = [
        impression_auc(imp.labels, users.affinity[imp.user][news.topic[imp.candidates]])
        for imp in impressions
    ]
    return float(np.mean(aucs))


def _summary(
    train: list[Impression], dev: list[Impression], news: News, users: Users
) -> dict[str, float]:
    seen = np.zeros(len(news.ids), dtype=bool)
    seen[referenced(train, users)] = True
    dev_cands = np.concatenate([imp.candidates for imp in dev])
    stats: dict[str, float] = {"news_total": float(len(news.ids))}
    for name, imps in (("train", train), ("dev", dev)):
        labels = np.concatenate([imp.labels for imp in imps])
        stats[f"{name}_news"] = float(len(referenced(imps, users)))
        stats[f"{name}_users"] = float(len({imp.user for imp in imps}))
        stats[f"{name}_click_rate"] = float(labels.mean())
        stats[f"{name}_oracle_auc"] = oracle_auc(imps, news, users)
    stats["dev_candidates_unseen_in_train"] = float((~seen[dev_cands]).mean())
    return stats


def make_dataset(out: Path, seed: int = DEFAULT_SEED) -> dict[str, float]:
    """Writes train/ and dev/ under `out`; returns summary statistics."""
    rng = np.random.default_rng(seed)
    news = make_news(rng)
    users = make_users(rng, news)
    train = make_impressions(
        rng, news, users, N_TRAIN_IMPRESSIONS, tuple(range(TRAIN_DAYS)), TRAIN_RECENCY
    )
    dev = make_impressions(rng, news, users, N_DEV_IMPRESSIONS, (DEV_DAY,), DEV_RECENCY)
    write_split(out / "train", train, news, users)
    write_split(out / "dev", dev, news, users)
    return _summary(train, dev, news, users)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    stats = make_dataset(args.out, args.seed)
    for key, value in stats.items():
        print(f"{key}: {value:.4g}")
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
