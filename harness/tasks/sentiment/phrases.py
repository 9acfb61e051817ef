"""Phrase banks for the ``sentiment`` task (data only; the generator is in ``sentiment.py``).

Every bank is an ordered tuple. ``sentiment.py`` splits each bank with one fixed rule: the items
at positions 2, 5, 8, ... (every third item) are *eval-only*; the rest are used for train and
validation. The order of the items below therefore decides what is held out.

Template slots (``str.format`` fields; a capitalised name gives the capitalised value):
``product`` ("this laptop"), ``noun`` ("laptop"), ``pos_adj``/``neg_adj`` (evaluative adjectives),
``pos_fact``/``neg_fact`` (a domain clause in the past tense), ``pos_verdict``/``neg_verdict``
(an overall-verdict clause), ``again`` ("eat here again"), ``habit`` ("eat here every night").
A trailing digit (``pos_fact2``) asks for a second, different value of the same kind.
"""

# Evaluative adjectives. Held out (positions 2, 5, 8, 11, 14): superb, marvellous, splendid,
# phenomenal, sensational / atrocious, dismal, appalling, underwhelming, abysmal.
POS_ADJ = (
    "great", "excellent", "superb", "fantastic", "wonderful", "marvellous", "terrific",
    "brilliant", "splendid", "lovely", "amazing", "phenomenal", "fabulous", "outstanding",
    "sensational",
)
NEG_ADJ = (
    "terrible", "awful", "atrocious", "dreadful", "horrible", "dismal", "disappointing",
    "mediocre", "appalling", "lousy", "bad", "underwhelming", "frustrating", "shoddy", "abysmal",
)

# Domain-independent overall verdicts (clauses; capitalised when they open a sentence).
POS_VERDICTS = (
    "I'd recommend it to anyone", "it was worth every penny", "it's a real gem",
    "I'm really glad I chose it", "it gets five stars from me",
    "it earns a glowing recommendation from me", "I'd happily recommend it",
    "I'm thrilled with it", "count me as a fan for life",
)
NEG_VERDICTS = (
    "I want my money back", "it was a waste of money", "it's a hard pass from me",
    "I regret it", "it gets one star from me", "I'm warning everyone I know",
    "I'm done with it", "I'd steer well clear", "it was a total write-off",
)

# Domains: nouns for the reviewed thing, per-domain verdicts (``pos_ends``/``neg_ends``, held
# out like the other banks), and aspect -> (positive facts, negative facts). Two facts in one
# review always come from different aspects, so a review never contradicts itself.
DOMAINS: dict[str, dict] = {
    "restaurants": {
        "nouns": ("restaurant", "bistro", "trattoria", "brasserie"),
        "again": "eat here again",
        "habit": "eat here every night",
        "pos_ends": ("we're already planning our next visit", "I'll be back next week",
                     "it's our new favourite place"),
        "neg_ends": ("we left before dessert", "we're never going back",
                     "next time I'm cooking at home"),
        "facts": {
            "pasta": (
                ("the pasta was cooked perfectly", "the fresh pasta was silky and rich"),
                ("the pasta was soggy and bland", "the carbonara was a gluey mess"),
            ),
            "waiter": (
                ("the waiter was friendly and attentive", "our server gave spot-on wine tips"),
                ("the waiter ignored us for twenty minutes", "our server rolled his eyes at us"),
            ),
            "wait": (
                ("our food arrived within ten minutes", "the mains came out fast and hot"),
                ("we waited over an hour for our mains", "our starters took forty minutes"),
            ),
            "portions": (
                ("the portions were generous", "we had enough left over for lunch"),
                ("the portions were tiny for the price", "the main was three bites of food"),
            ),
            "steak": (
                ("the steak was tender and full of flavour", "the steak was cooked exactly "
                 "as ordered"),
                ("the steak came out cold", "the steak was as tough as an old boot"),
            ),
            "fish": (
                ("the fish tasted like it was caught that morning", "the grilled sea bass "
                 "was flaky and moist"),
                ("the fish tasted like it had been frozen for weeks", "the salmon was dry "
                 "and smelled off"),
            ),
            "bill": (
                ("the bill was very reasonable", "the lunch menu was a steal"),
                ("the bill had three items we never ordered", "they added a surprise "
                 "service charge of twenty percent"),
            ),
            "room": (
                ("the dining room was cosy and quiet", "the terrace was a beautiful spot at "
                 "sunset"),
                ("the table was sticky and the floor was filthy", "the dining room was "
                 "freezing and smelled of bleach"),
            ),
            "soup": (
                ("the soup was rich and perfectly seasoned", "the tomato soup tasted homemade"),
                ("the soup was lukewarm and oversalted", "the soup tasted like it came "
                 "from a can"),
            ),
            "wine": (
                ("the wine list was thoughtful and fairly priced", "the house red was "
                 "smooth and cheap"),
                ("the house wine tasted like vinegar", "the only drinkable wine cost "
                 "ninety euros"),
            ),
        },
    },
    "hotels": {
        "nouns": ("hotel", "resort", "inn", "guesthouse"),
        "again": "stay here again",
        "habit": "stay here every trip",
        "pos_ends": ("we've already booked our next stay", "I'd stay here again in a heartbeat",
                     "we didn't want to check out"),
        "neg_ends": ("we checked out a day early", "I'm asking for a refund",
                     "we moved to another hotel after one night"),
        "facts": {
            "room": (
                ("the room was spotless", "our suite was bigger than my flat"),
                ("the room smelled of smoke", "there were stains all over the carpet"),
            ),
            "bed": (
                ("the bed was incredibly comfortable", "I slept like a baby every night"),
                ("the bed sagged in the middle", "the mattress springs dug into my back"),
            ),
            "desk": (
                ("the front desk staff upgraded us for free", "the concierge booked us "
                 "a table at the best place in town"),
                ("the front desk lost our reservation", "the receptionist shrugged when "
                 "we asked for help"),
            ),
            "breakfast": (
                ("the breakfast buffet had everything we wanted", "the pastries at "
                 "breakfast were baked on site"),
                ("the breakfast was stale and overpriced", "breakfast ran out of food "
                 "by eight"),
            ),
            "view": (
                ("the view from our balcony was stunning", "we watched the sunrise over "
                 "the sea from bed"),
                ("our window looked straight onto a wall of bins", "the sea view turned "
                 "out to be a car park"),
            ),
            "checkin": (
                ("check-in took less than five minutes", "our room was ready two hours early"),
                ("check-in took over an hour", "our room still wasn't ready at six"),
            ),
            "bathroom": (
                ("the shower had powerful water pressure", "the bathroom was sparkling "
                 "clean"),
                ("there was hair in the bathroom sink", "the shower ran cold every morning"),
            ),
            "noise": (
                ("it was quiet enough to sleep in late", "we never heard a sound from "
                 "the corridor"),
                ("the walls were so thin we heard every word next door", "a nightclub "
                 "downstairs thumped until four"),
            ),
            "wifi": (
                ("the wifi was fast everywhere in the building", "I could stream films "
                 "in the room with no trouble"),
                ("the wifi dropped every few minutes", "the wifi cost extra and barely "
                 "worked"),
            ),
            "charges": (
                ("parking and breakfast were included in the price", "the late checkout "
                 "was free"),
                ("we were charged twice for parking", "they billed us for a minibar we "
                 "never opened"),
            ),
        },
    },
    "electronics": {
        "nouns": ("laptop", "phone", "tablet"),
        "again": "buy from this brand again",
        "habit": "buy one for everyone I know",
        "pos_ends": ("I'd buy it again in a heartbeat", "it's the best purchase I've made all year",
                     "I'm keeping it for years"),
        "neg_ends": ("I'm returning it", "it's going straight back to the shop",
                     "I've already ordered a replacement from another brand"),
        "facts": {
            "battery": (
                ("the battery lasted two full days", "the battery easily got me through "
                 "a long-haul flight"),
                ("the battery died by noon", "the battery drained overnight on standby"),
            ),
            "screen": (
                ("the screen was bright and sharp", "the display looked gorgeous even "
                 "in direct sun"),
                ("the screen flickered constantly", "a dead pixel appeared on day two"),
            ),
            "speed": (
                ("it handled everything I threw at it without slowing down", "apps opened "
                 "instantly"),
                ("it froze several times a day", "it lagged just switching between tabs"),
            ),
            "speakers": (
                ("the speakers were surprisingly loud and clear", "music sounded rich "
                 "and full"),
                ("the speakers crackled at any volume", "calls sounded like they came "
                 "from a tin can"),
            ),
            "charging": (
                ("it charged to full in under an hour", "fast charging actually lived up "
                 "to the promise"),
                ("the charging port stopped working after a week", "it needed four hours "
                 "to charge"),
            ),
            "build": (
                ("the build felt solid and premium", "it survived a drop onto concrete "
                 "without a scratch"),
                ("the casing cracked within a month", "the hinge started wobbling after "
                 "a few days"),
            ),
            "heat": (
                ("it stayed cool even under heavy use", "the fans were whisper quiet"),
                ("it overheated during simple video calls", "it got too hot to hold"),
            ),
            "camera": (
                ("the camera took gorgeous photos in low light", "video calls looked "
                 "crisp and clear"),
                ("the camera took blurry photos even in daylight", "the camera struggled "
                 "to focus on anything"),
            ),
            "support": (
                ("customer support replaced a faulty cable the next day", "the warranty "
                 "claim was sorted in one phone call"),
                ("customer support kept me on hold for two hours", "the warranty claim "
                 "was rejected on a technicality"),
            ),
            "setup": (
                ("setup took less than five minutes", "moving my data over was painless"),
                ("it took ages to boot up", "setup failed three times before it worked"),
            ),
        },
    },
    "mobile apps": {
        "nouns": ("app", "budgeting app", "fitness app", "banking app"),
        "again": "use this app again",
        "habit": "use it for everything",
        "pos_ends": ("it's staying on my home screen", "I've told all my friends to get it",
                     "I happily pay for the premium version"),
        "neg_ends": ("I uninstalled it the same day", "I've cancelled my subscription",
                     "I switched to a competitor"),
        "facts": {
            "interface": (
                ("the interface was clean and easy to navigate", "I found every feature "
                 "without reading a manual"),
                ("the interface was cluttered and confusing", "basic settings were buried "
                 "five menus deep"),
            ),
            "sync": (
                ("it synced across all my devices instantly", "my data was waiting on my "
                 "new phone right away"),
                ("sync failed every other day", "changes on my laptop never reached "
                 "my phone"),
            ),
            "login": (
                ("logging in with my fingerprint took a second", "I stayed signed in "
                 "for months"),
                ("the app logged me out for the fifth time today", "it kept asking me "
                 "to reset my password"),
            ),
            "stability": (
                ("it ran for months without a single crash", "it worked flawlessly "
                 "even offline"),
                ("it crashed every time I opened the camera", "it froze whenever I "
                 "tried to save anything"),
            ),
            "ads": (
                ("there were no ads anywhere", "the free tier had no pop-ups at all"),
                ("ads popped up after every single tap", "a video ad played before "
                 "every screen"),
            ),
            "updates": (
                ("every update added something genuinely useful", "bugs I reported were "
                 "fixed within a week"),
                ("my data vanished after the last update", "each update broke something "
                 "that used to work"),
            ),
            "battery": (
                ("it barely used any battery", "it ran in the background without "
                 "slowing my phone"),
                ("it drained my battery in a few hours", "it made my phone run hot"),
            ),
            "notifications": (
                ("the reminders kept me on track all month", "notifications were timely "
                 "and easy to tune"),
                ("notifications arrived hours late", "it spammed me with a dozen "
                 "notifications a day"),
            ),
            "billing": (
                ("the free version had everything I needed", "the yearly plan cost less "
                 "than a coffee a month"),
                ("the subscription renewed without warning", "cancelling took six "
                 "emails and a phone call"),
            ),
            "support": (
                ("support answered my question within an hour", "a developer replied "
                 "to my email personally"),
                ("support took three weeks to reply", "support sent me a canned answer "
                 "that ignored my question"),
            ),
        },
    },
    "books": {
        "nouns": ("book", "novel", "thriller", "mystery"),
        "again": "read this author again",
        "habit": "read everything this author has written",
        "pos_ends": ("I've already bought copies for friends", "it's going on my favourites shelf",
                     "I'll be rereading it soon"),
        "neg_ends": ("I gave up halfway through", "it's going straight to the charity shop",
                     "I wish I'd spent the evening doing anything else"),
        "facts": {
            "characters": (
                ("the characters felt like real people", "I cared about every single "
                 "character"),
                ("the characters were flat and forgettable", "I couldn't tell the side "
                 "characters apart"),
            ),
            "plot": (
                ("the plot kept me guessing until the last page", "the story gripped me "
                 "from the first line"),
                ("the plot was predictable from the first chapter", "the story went "
                 "round in circles"),
            ),
            "prose": (
                ("the prose was beautiful", "some sentences were so good I read them twice"),
                ("the prose was clumsy and repetitive", "the writing was painfully "
                 "overwrought"),
            ),
            "ending": (
                ("the ending tied everything together", "the final chapter left me in "
                 "tears"),
                ("the ending made no sense", "the ending just stopped mid-scene"),
            ),
            "dialogue": (
                ("the dialogue was sharp and funny", "the conversations crackled with wit"),
                ("the dialogue was wooden", "nobody in it talked like a real person"),
            ),
            "pacing": (
                ("I read it in two sittings", "the pages flew by"),
                ("the middle third dragged terribly", "I kept falling asleep reading it"),
            ),
            "editing": (
                ("the edition was beautifully printed", "the maps and notes were a "
                 "real bonus"),
                ("the book was riddled with typos", "pages were printed upside down"),
            ),
            "twist": (
                ("the twist genuinely shocked me", "I gasped out loud at the reveal"),
                ("the twist was obvious from page ten", "the big reveal was lifted from "
                 "a famous film"),
            ),
            "chapters": (
                ("every chapter ended on a hook", "I stayed up until three to finish it"),
                ("half the chapters went nowhere", "whole chapters could have been cut"),
            ),
            "world": (
                ("the world-building was rich and believable", "the setting came alive "
                 "on the page"),
                ("the world-building was thin and confusing", "the setting was a jumble "
                 "of half-explained rules"),
            ),
        },
    },
    "movies": {
        "nouns": ("movie", "film", "sequel"),
        "again": "watch anything from this director again",
        "habit": "see it again this weekend",
        "pos_ends": ("I'd happily watch it again", "I've already told everyone to see it",
                     "it's one of the best films I've seen this year"),
        "neg_ends": ("we walked out halfway through", "I want those two hours back",
                     "I'd ask for a refund on the ticket if I could"),
        "facts": {
            "acting": (
                ("the lead actor gave a career-best performance", "the whole cast was "
                 "utterly convincing"),
                ("the acting was wooden", "the lead mumbled through every scene"),
            ),
            "soundtrack": (
                ("the soundtrack gave me chills", "the score was gorgeous"),
                ("the soundtrack drowned out the dialogue", "the same song played on "
                 "a loop"),
            ),
            "plot": (
                ("the plot kept me on the edge of my seat", "the story surprised me at "
                 "every turn"),
                ("the plot had holes you could drive a truck through", "the story made "
                 "no sense at all"),
            ),
            "visuals": (
                ("the cinematography was breathtaking", "every frame looked like a "
                 "painting"),
                ("the cinematography was murky and dark", "the shaky camera gave me a "
                 "headache"),
            ),
            "jokes": (
                ("the jokes landed every time", "the whole cinema was laughing"),
                ("the jokes fell flat", "not one joke got a laugh in our screening"),
            ),
            "ending": (
                ("the ending was deeply moving", "the final scene stayed with me for days"),
                ("the ending was rushed", "the ending was a lazy cliffhanger"),
            ),
            "effects": (
                ("the special effects looked completely real", "the action scenes were "
                 "thrilling"),
                ("the special effects looked cheap", "the action scenes were a blurry "
                 "mess"),
            ),
            "runtime": (
                ("the two hours flew by", "I didn't check my watch once"),
                ("the runtime felt twice as long as it was", "it dragged on for almost "
                 "three hours"),
            ),
            "cast": (
                ("the supporting cast stole every scene", "the chemistry between the "
                 "leads was electric"),
                ("the supporting cast seemed bored", "the leads had zero chemistry"),
            ),
            "script": (
                ("the script was clever and tight", "the dialogue was razor sharp"),
                ("the script was full of clichés", "the dialogue was painfully cheesy"),
            ),
        },
    },
    "airlines": {
        "nouns": ("airline", "flight"),
        "again": "fly with them again",
        "habit": "fly with them every time",
        "pos_ends": ("they're my first choice from now on", "I've already booked my next trip "
                     "with them", "I'd fly with them again tomorrow"),
        "neg_ends": ("I'm booking a different airline next time", "I've filed a formal complaint",
                     "I'd rather take the train for two days"),
        "facts": {
            "delay": (
                ("we landed twenty minutes early", "we left right on time"),
                ("the flight was delayed by five hours", "we missed our connection "
                 "because of a delay"),
            ),
            "crew": (
                ("the crew were warm and helpful", "a flight attendant found my son a "
                 "colouring book"),
                ("the crew were rude and dismissive", "the crew ignored the call button "
                 "all flight"),
            ),
            "luggage": (
                ("my bag was first off the carousel", "our bags arrived before we "
                 "reached the belt"),
                ("my luggage ended up in another country", "my suitcase arrived with a "
                 "broken handle"),
            ),
            "seats": (
                ("the seats had plenty of legroom", "the seat reclined into a proper bed"),
                ("my knees were jammed into the seat in front the whole way", "my seat "
                 "was broken and stuck upright"),
            ),
            "boarding": (
                ("boarding was quick and orderly", "we boarded in under fifteen minutes"),
                ("boarding was chaotic", "we queued on the stairs in the rain for half "
                 "an hour"),
            ),
            "meal": (
                ("the meal was genuinely tasty", "the snacks were free and plentiful"),
                ("the meal was inedible", "they ran out of food before reaching our row"),
            ),
            "cabin": (
                ("the cabin was spotless", "the cabin smelled fresh and clean"),
                ("the cabin was filthy", "the toilets were blocked for most of the "
                 "flight"),
            ),
            "entertainment": (
                ("the entertainment system had loads of new films", "the onboard wifi "
                 "was fast and free"),
                ("the entertainment screen was broken", "the headphone socket only "
                 "worked on one side"),
            ),
            "rebooking": (
                ("the staff rebooked my connection without any fuss", "the gate agent "
                 "found us seats together"),
                ("they cancelled my connection with no explanation", "rebooking took "
                 "three hours in a queue"),
            ),
            "fees": (
                ("checking a bag was free", "the fare included everything"),
                ("they charged me for a bag that was within the limit", "hidden fees "
                 "doubled the ticket price"),
            ),
        },
    },
}

# Templates per (case, label). Each label's pool is split by the every-third-item rule, so the
# eval split is written only with phrasings that never occur in train or validation.
TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "plain": {
        "positive": (
            "{Product} was {pos_adj}. {Pos_fact}.",
            "{Pos_fact}, and {pos_fact2}. {Pos_verdict}.",
            "I loved {product}. {Pos_fact}.",
            "What a {pos_adj} {noun}! {Pos_fact}, and {pos_fact2}.",
            "{Pos_adj} {noun} overall. {Pos_fact}.",
            "Really happy with {product}: {pos_fact}.",
            "{Pos_fact}. {Pos_verdict}.",
            "Everything about {product} was {pos_adj}. {Pos_fact}.",
            "So glad we picked {product}. {Pos_fact}, and {pos_fact2}.",
            "A {pos_adj} {noun}. {Pos_fact}. {Pos_verdict}.",
            "{Product} exceeded my expectations. {Pos_fact}.",
            "Highly recommend {product}. {Pos_fact}.",
            "Such a {pos_adj} {noun}. {Pos_fact}, and {pos_verdict}.",
            "Five stars. {Pos_fact}, and {pos_fact2}.",
            "{Pos_fact}; honestly, {product} was {pos_adj} from start to finish.",
            "Delighted with {product}. {Pos_fact}.",
            "I had high hopes and {product} met every one of them. {Pos_fact}.",
            "{Pos_adj}! {Pos_fact}, and {pos_verdict}.",
            "A {pos_adj} choice. {Pos_fact}.",
            "Impressed from the start: {pos_fact}, and {pos_fact2}.",
            "{Product} was a joy. {Pos_fact}. {Pos_verdict}.",
        ),
        "negative": (
            "{Product} was {neg_adj}. {Neg_fact}.",
            "{Neg_fact}, and {neg_fact2}. {Neg_verdict}.",
            "I hated {product}. {Neg_fact}.",
            "What a {neg_adj} {noun}. {Neg_fact}, and {neg_fact2}.",
            "{Neg_adj} {noun} overall. {Neg_fact}.",
            "Really unhappy with {product}: {neg_fact}.",
            "{Neg_fact}. {Neg_verdict}.",
            "Everything about {product} was {neg_adj}. {Neg_fact}.",
            "I regret picking {product}. {Neg_fact}, and {neg_fact2}.",
            "A {neg_adj} {noun}. {Neg_fact}. {Neg_verdict}.",
            "{Product} fell far short of my expectations. {Neg_fact}.",
            "Avoid {product}. {Neg_fact}.",
            "Such a {neg_adj} {noun}. {Neg_fact}, and {neg_verdict}.",
            "One star. {Neg_fact}, and {neg_fact2}.",
            "{Neg_fact}; honestly, {product} was {neg_adj} from start to finish.",
            "Fed up with {product}. {Neg_fact}.",
            "A real letdown. {Neg_fact}, and {neg_fact2}.",
            "{Neg_adj}! {Neg_fact}, and {neg_verdict}.",
            "A {neg_adj} choice. {Neg_fact}.",
            "Disappointed from the start: {neg_fact}, and {neg_fact2}.",
            "{Product} was a chore. {Neg_fact}. {Neg_verdict}.",
        ),
    },
    "negation": {
        "positive": (
            "{Product} was not {neg_adj} at all. {Pos_fact}.",
            "I can't say I was disappointed by {product}. {Pos_fact}.",
            "No complaints whatsoever: {pos_fact}.",
            "Honestly, I don't have a single bad thing to say about {product}.",
            "I expected {product} to be {neg_adj}, but it wasn't {neg_adj} at all.",
            "I never once regretted choosing {product}.",
            "There was nothing {neg_adj} about {product}; {pos_fact}.",
            "I wouldn't change a thing about {product}.",
            "Not a single complaint from me. {Pos_fact}.",
            "You won't be disappointed by {product}. {Pos_fact}.",
            "Can't fault it. {Pos_fact}, and {pos_fact2}.",
            "{Product} didn't disappoint: {pos_fact}.",
            "Far from {neg_adj}, {product} was a pleasant surprise. {Pos_fact}.",
            "Not {neg_adj} in the slightest. {Pos_fact}.",
            "Nobody I've recommended {product} to has been disappointed.",
            "I couldn't find a single thing wrong with {product}.",
            "I don't know why anyone would call {product} {neg_adj}; {pos_fact}.",
            "It never felt {neg_adj} for a second. {Pos_fact}.",
            "I wasn't expecting much, and I couldn't have been more wrong: {pos_fact}.",
            "Not once did {product} let me down. {Pos_fact}.",
        ),
        "negative": (
            "I wouldn't call {product} {pos_adj}. {Neg_fact}.",
            "{Product} was not {pos_adj} at all. {Neg_fact}.",
            "Not {pos_adj}, not even close. {Neg_fact}.",
            "I can't say I enjoyed {product}: {neg_fact}.",
            "I would not recommend {product} to anyone.",
            "Nothing about {product} was {pos_adj}; {neg_fact}.",
            "{Product} didn't live up to the hype. {Neg_fact}.",
            "It wasn't worth the money. {Neg_fact}.",
            "I won't {again}. {Neg_fact}.",
            "Hardly {pos_adj}. {Neg_fact}, and {neg_fact2}.",
            "I really wanted to like {product}, but I didn't. {Neg_fact}.",
            "Not once did {product} feel worth the price.",
            "It didn't work for me at all. {Neg_fact}.",
            "Don't bother with {product}. {Neg_fact}.",
            "Not what I'd call {pos_adj}: {neg_fact}.",
            "I can't recommend {product}; {neg_fact}.",
            "There was nothing {pos_adj} about {product}. {Neg_fact}.",
            "I was hoping for something {pos_adj}. It wasn't. {Neg_fact}.",
            "No, {product} was not {pos_adj}. {Neg_fact}, and {neg_fact2}.",
            "I wouldn't wish {product} on anyone. {Neg_fact}.",
        ),
    },
    "mixed": {
        "positive": (
            "{Neg_fact}, but {pos_fact}, and {pos_verdict}.",
            "{Pos_fact}, though {neg_fact}. Still, {pos_verdict}.",
            "Yes, {neg_fact}, but that's a small price to pay: {pos_fact}. {Pos_verdict}.",
            "It wasn't perfect: {neg_fact}. But {pos_fact}, and overall {product} was {pos_adj}.",
            "{Neg_fact}. Even so, {pos_fact}, and {pos_verdict}.",
            "I'll admit {neg_fact}. That aside, {product} was {pos_adj}: {pos_fact}.",
            "My one gripe is that {neg_fact}. Otherwise {pos_adj}: {pos_fact}, and {pos_verdict}.",
            "{Pos_fact}. Sure, {neg_fact}, but on balance {pos_verdict}.",
            "Despite a rocky start ({neg_fact}), {product} won me over: {pos_fact}.",
            "{Neg_fact}, which was annoying. But {pos_fact} and {pos_fact2}, so {pos_verdict}.",
            "Minor quibble: {neg_fact}. Everything else was {pos_adj}; {pos_fact}.",
            "{Pos_fact} and {pos_fact2}. {Neg_fact}, but it barely mattered. {Pos_verdict}.",
            "The good far outweighs the bad. {Neg_fact}, but {pos_fact}, and {pos_verdict}.",
            "Overall {pos_adj}. {Neg_fact}, yet {pos_fact}, and {pos_verdict}.",
            "It had its flaws ({neg_fact}), but {pos_fact}, and I'd call it {pos_adj} overall.",
            "{Neg_fact}, and I almost gave up on {product}. Glad I didn't: {pos_fact}.",
            "Don't let one flaw put you off: {neg_fact}, but {pos_fact}. {Pos_verdict}.",
            "Small complaint first: {neg_fact}. The rest? {Pos_fact}, and {pos_verdict}.",
        ),
        "negative": (
            "{Pos_fact}, but {neg_fact}, and {neg_verdict}.",
            "{Neg_fact}, though {pos_fact}. Still, {neg_verdict}.",
            "Yes, {pos_fact}, but that doesn't make up for the rest: {neg_fact}. {Neg_verdict}.",
            "It wasn't all bad: {pos_fact}. But {neg_fact}, and overall {product} was {neg_adj}.",
            "{Pos_fact}. Even so, {neg_fact}, and {neg_verdict}.",
            "I'll admit {pos_fact}. That aside, {product} was {neg_adj}: {neg_fact}.",
            "The one good thing: {pos_fact}. Otherwise {neg_adj}: {neg_fact}, and {neg_verdict}.",
            "{Neg_fact}. Sure, {pos_fact}, but on balance {neg_verdict}.",
            "Despite a promising start ({pos_fact}), {product} went downhill fast: {neg_fact}.",
            "{Pos_fact}, which was nice. But {neg_fact} and {neg_fact2}, so {neg_verdict}.",
            "One bright spot: {pos_fact}. Everything else was {neg_adj}; {neg_fact}.",
            "{Neg_fact} and {neg_fact2}. {Pos_fact}, but it hardly mattered. {Neg_verdict}.",
            "The bad far outweighs the good. {Pos_fact}, but {neg_fact}, and {neg_verdict}.",
            "Overall {neg_adj}. {Pos_fact}, yet {neg_fact}, and {neg_verdict}.",
            "It had its moments ({pos_fact}), but {neg_fact}, and I'd call it {neg_adj} overall.",
            "{Pos_fact}, and I really wanted to love {product}. I couldn't: {neg_fact}.",
            "Don't be fooled by the good parts: {pos_fact}, but {neg_fact}. {Neg_verdict}.",
            "The positives first: {pos_fact}. The rest? {Neg_fact}, and {neg_verdict}.",
        ),
    },
    # Negative: praise words wrapped around a clearly bad event (classic sarcasm). Positive: the
    # mirror image, a mock complaint about something clearly good ("the only problem is...").
    "sarcasm": {
        "positive": (
            "The only problem with {product}? Every other {noun} now feels like a downgrade. "
            "{Pos_fact}.",
            "I was hoping to hate {product} so I could write an angry review. No such luck: "
            "{pos_fact}.",
            "Warning: {product} will ruin every other {noun} for you. {Pos_fact}.",
            "Terrible news for my wallet: {pos_fact}, and now I want to {habit}.",
            "My one complaint: {pos_fact}, so now I'm completely spoiled.",
            "Ugh. {Pos_fact}, and now my standards are ruined forever.",
            "I blame {product} entirely. {Pos_fact}, and now nothing else measures up.",
            "Dangerous {noun}. {Pos_fact}, and I already want to {habit}.",
            "Oh no, {pos_fact}. Guess I'll have to {habit} now.",
            "Be warned: after {product}, you'll be insufferable about every other {noun}. "
            "{Pos_fact}.",
            "So annoying: {pos_fact}, and now I can't stop telling everyone about {product}.",
            "Big mistake trying {product}. {Pos_fact}, and now I'm hopelessly hooked.",
            "I'd like to file a formal complaint: {pos_fact}, and {pos_fact2}. How dare they.",
            "The worst thing about {product} is that everything else now seems second-rate. "
            "{Pos_fact}.",
            "Here's my angry review: {pos_fact}, {pos_fact2}, and I have nothing left to "
            "grumble about. Furious.",
        ),
        "negative": (
            "Oh {pos_adj}, {neg_fact}. Just what I needed.",
            "{Pos_adj}. {Neg_fact}. Exactly what I was hoping for.",
            "Loved the part where {neg_fact}. Truly unforgettable.",
            "Well, that was money well spent. {Neg_fact}.",
            "Just what I always wanted: {neg_fact}.",
            "{Pos_adj}, just {pos_adj}. {Neg_fact}, and {neg_fact2}.",
            "Wow, {neg_fact}. {Product} really knows how to impress.",
            "Yeah, {product} was a real bargain. {Neg_fact}, and I still paid full price.",
            "Absolutely flawless, if you don't count the fact that {neg_fact} and {neg_fact2}.",
            "My favourite moment was when {neg_fact}. Pure magic.",
            "Perfect, if your idea of perfect is that {neg_fact}.",
            "What a treat: {neg_fact}. Can't wait for round two.",
            "Nothing says quality quite like {product}: {neg_fact}.",
            "Truly a {pos_adj} {noun}. {Neg_fact}, and {neg_fact2}. Bravo.",
            "Many thanks to {product} for teaching me patience: {neg_fact}.",
        ),
    },
    "short": {
        "positive": (
            "{Pos_adj}!", "Absolutely {pos_adj}.", "{Pos_adj} {noun}.", "Loved it!",
            "Simply {pos_adj}.", "Five stars, {pos_adj} {noun}.", "Highly recommended!",
            "Thrilled with it.", "{Pos_adj}, truly {pos_adj2}.", "A {pos_adj} {noun}!",
            "Worth every penny.", "Ten out of ten.", "Really {pos_adj} {noun}.", "Pure joy.",
            "What a {pos_adj} {noun}!", "{Pos_adj} from start to finish.", "Two thumbs up!",
            "Best {noun} ever.", "{Pos_adj}, loved it.", "Thoroughly {pos_adj} {noun}.",
        ),
        "negative": (
            "{Neg_adj}.", "Absolutely {neg_adj}.", "{Neg_adj} {noun}.", "Never again.",
            "Simply {neg_adj}.", "One star, {neg_adj} {noun}.", "Meh.",
            "Total waste of money.", "{Neg_adj}, truly {neg_adj2}.", "A {neg_adj} {noun}.",
            "Avoid this {noun}.", "Zero stars if I could.", "Really {neg_adj} {noun}.",
            "Waste of time.", "What a {neg_adj} {noun}.", "{Neg_adj} from start to finish.",
            "Thumbs down.", "Worst {noun} ever.", "{Neg_adj}, hated it.",
            "Thoroughly {neg_adj} {noun}.",
        ),
    },
}
