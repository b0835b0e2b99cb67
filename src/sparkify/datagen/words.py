"""Vocabularies for generated names. Non-ASCII entries mirror the real Million Song Dataset."""

TITLE_WORDS = (
    "Love Night Heart Fire Dream Rain Blue City Road Home Light Dance Gold River Ghost Summer Winter Stone "
    "Shadow Angel Silver Wild Ocean Empty Broken Electric Sweet Lonely Morning Midnight Paper Glass Velvet "
    "Thunder Echo Desert Crystal Secret Golden Falling Rising Hollow Northern Southern Neon Wire Garden "
    "Mirror Cherry Honey Sugar Storm Window Little Last First Lost Young Old Highway Train Radio Canción "
    "Corazón Niño Mädchen Straße Été Fête Señorita"
).split()

ARTIST_FIRST = (
    "The Los Die Les Big Little Black White Red Royal Velvet Silver Golden Electric Young Old Saint Doctor "
    "Captain Lady Mister"
).split()

ARTIST_SECOND = (
    "Monkeys Strokes Killers Wolves Foxes Kings Queens Pilots Sailors Ramblers Horses Tigers Lions Ghosts "
    "Saints Sinners Brothers Sisters Dreamers Drifters Hearts Stones Shadows Orchestra Collective Trio "
    "Quartet Band Ensemble Sound System"
).split()

SOLO_ARTISTS = (
    "Björk",
    "Sigur Rós",
    "Motörhead",
    "Mötley Crüe",
    "Beyoncé",
    "Hüsker Dü",
    "Céline Dion",
    "Jorge Drexler",
    "Zoé",
    "Ólafur Arnalds",
    "Antônio Carlos Jobim",
    "Françoise Hardy",
)

FIRST_NAMES = (
    "Kaylee Lily Jacob Chloe Aiden Ava Ryan Tegan Jayden Sara Kevin Jacqueline Lucas Matthew Layla Molly "
    "Ethan Emily Noah Olivia Liam Mia Mason Sophia Logan Isabella Wyatt Harper Caleb Avery Colm Dominick "
    "Brayden Celeste Rylan Mohammad Katherine Theodore Cienna Anabelle"
).split()

LAST_NAMES = (
    "Summers Koch Garza Cruz Harrell Levine Smith Jones Brown Taylor Johnson Miller Davis Wilson Moore "
    "Anderson Thomas Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson "
    "Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green"
).split()

LOCATIONS = (
    "Phoenix-Mesa-Scottsdale, AZ",
    "San Francisco-Oakland-Hayward, CA",
    "Portland-South Portland, ME",
    "Lansing-East Lansing, MI",
    "Waterloo-Cedar Falls, IA",
    "Tampa-St. Petersburg-Clearwater, FL",
    "Chicago-Naperville-Elgin, IL-IN-WI",
    "Atlanta-Sandy Springs-Roswell, GA",
    "New York-Newark-Jersey City, NY-NJ-PA",
    "Houston-The Woodlands-Sugar Land, TX",
    "Detroit-Warren-Dearborn, MI",
    "Seattle-Tacoma-Bellevue, WA",
    "Birmingham-Hoover, AL",
    "Janesville-Beloit, WI",
)

ARTIST_LOCATIONS = (
    "",
    "",
    "",
    "London, England",
    "Reykjavík, Iceland",
    "Hamburg, Germany",
    "Montréal, Québec",
    "New York, NY",
    "Los Angeles, CA",
    "São Paulo, Brasil",
    "Detroit, MI",
    "Nashville, TN",
    "Göteborg, Sweden",
)

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) "
    "Version/7.0 Mobile/11D257 Safari/9537.53",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/36.0.1985.125 "
    "Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)",
)
