"""Hand-written fact tables and passage parts for the ``general`` probe task (:mod:`general`).

Everything here was written for this project. Facts are deliberately common and stable (no
populations, records or anything that changes year to year), so that a small instruct model
answers most of them before any fine-tuning and a drop after fine-tuning means forgetting.

Tables are multi-line strings, one item per line, fields separated by ``|``: for most tables
``subject | answer | distractor | distractor | distractor`` (the question is a template over
``subject``); for :data:`SCIENCE` and :data:`COMMONSENSE` the first field is the whole question.
Pair tables (capitals, languages...) give their distractors implicitly: the other answers.
"""

from __future__ import annotations

# --- world facts ------------------------------------------------------------------------------

CAPITALS: tuple[tuple[str, str], ...] = (
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("Russia", "Moscow"),
    ("the United Kingdom", "London"), ("Egypt", "Cairo"), ("Greece", "Athens"),
    ("Portugal", "Lisbon"), ("Ireland", "Dublin"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Austria", "Vienna"), ("Poland", "Warsaw"), ("Hungary", "Budapest"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("South Korea", "Seoul"),
    ("Thailand", "Bangkok"), ("Mexico", "Mexico City"), ("Argentina", "Buenos Aires"),
    ("Peru", "Lima"), ("Kenya", "Nairobi"), ("Cuba", "Havana"), ("Iran", "Tehran"),
    ("India", "New Delhi"),
)
"""Only countries whose capital is also their best-known city or is widely taught."""

CONTINENTS: tuple[tuple[str, str], ...] = (
    ("Kenya", "Africa"), ("Nigeria", "Africa"), ("Ghana", "Africa"), ("Ethiopia", "Africa"),
    ("Brazil", "South America"), ("Argentina", "South America"), ("Peru", "South America"),
    ("Japan", "Asia"), ("India", "Asia"), ("Thailand", "Asia"), ("Vietnam", "Asia"),
    ("France", "Europe"), ("Germany", "Europe"), ("Canada", "North America"),
)
"""Countries lying wholly on one continent."""
CONTINENT_NAMES = ("Africa", "Asia", "Europe", "South America", "North America", "Antarctica")

LANGUAGES: tuple[tuple[str, str], ...] = (
    ("Brazil", "Portuguese"), ("Mexico", "Spanish"), ("France", "French"),
    ("Germany", "German"), ("Italy", "Italian"), ("Japan", "Japanese"), ("Russia", "Russian"),
    ("Greece", "Greek"), ("Poland", "Polish"), ("Sweden", "Swedish"),
    ("South Korea", "Korean"), ("Turkey", "Turkish"),
)

CURRENCIES: tuple[tuple[str, str], ...] = (
    ("Japan", "yen"), ("the United Kingdom", "pound"), ("the United States", "dollar"),
    ("India", "rupee"), ("Russia", "ruble"), ("Mexico", "peso"),
)

LANDMARKS: tuple[tuple[str, str], ...] = (
    ("the Eiffel Tower", "France"), ("the Great Wall", "China"),
    ("the Pyramids of Giza", "Egypt"), ("the Taj Mahal", "India"), ("the Colosseum", "Italy"),
    ("the Statue of Liberty", "the United States"), ("Big Ben", "England"),
    ("Machu Picchu", "Peru"), ("the Sydney Opera House", "Australia"), ("Mount Fuji", "Japan"),
)

WORLD = """
What is the largest ocean on Earth? | Pacific | Atlantic | Indian | Arctic
What is the tallest mountain in the world? | Mount Everest | Mont Blanc | Mount Fuji | Ben Nevis
What is the largest hot desert in the world? | Sahara | Gobi | Mojave | Kalahari
How many continents are there? | seven | three | ten | twelve
What is the largest continent? | Asia | Europe | Australia | Antarctica
Which continent is covered almost entirely by ice? | Antarctica | Africa | Europe | Asia
In which country do kangaroos live in the wild? | Australia | Canada | Norway | Brazil
Which ocean lies between Europe and North America? | Atlantic | Pacific | Indian | Arctic
Which river flows through Egypt? | Nile | Thames | Danube | Amazon
Which river flows through London? | Thames | Seine | Nile | Danube
"""

# --- science ---------------------------------------------------------------------------------

SCIENCE = """
How many legs does a spider have? | eight | six | four | two
How many legs does an insect have? | six | eight | four | ten
What sweet food do bees make? | honey | butter | cheese | bread
What is frozen water called? | ice | steam | sand | smoke
At how many degrees Celsius does water freeze? | 0 | 50 | 75 | 200
At how many degrees Celsius does water boil at sea level? | 100 | 0 | 10 | 30
Which planet is closest to the Sun? | Mercury | Neptune | Saturn | Uranus
Which planet is known as the Red Planet? | Mars | Venus | Jupiter | Neptune
What is the largest planet in our solar system? | Jupiter | Mercury | Mars | Venus
Which planet is famous for its large bright rings? | Saturn | Mercury | Mars | Venus
Which planet do people live on? | Earth | Mars | Venus | Jupiter
What is the star at the center of our solar system? | the Sun | the Moon | Mars | Jupiter
What is the closest star to the Earth? | the Sun | the Moon | Mars | Venus
What travels around the Earth and shines at night? | the Moon | the Sun | Mars | a comet
How many planets are in our solar system? | eight | two | twenty | fifty
What gas do plants take in from the air to make food? | carbon dioxide | helium | neon | steam
What gas do people need to breathe in to stay alive? | oxygen | helium | smoke | neon
Which organ pumps blood around the body? | heart | stomach | liver | skin
Which organs do people use to breathe? | lungs | ears | kidneys | teeth
Which organ do people use to think? | brain | stomach | liver | lungs
Which sense do people use their ears for? | hearing | sight | smell | taste
Which sense do people use their eyes for? | sight | hearing | smell | taste
Which sense do people use their nose for? | smell | sight | hearing | taste
What force makes a dropped ball fall to the ground? | gravity | friction | magnetism | sound
What is the chemical formula of water? | H2O | CO2 | NaCl | O2
What does a caterpillar turn into? | butterfly | bird | frog | spider
What is a baby frog called? | tadpole | puppy | kitten | chick
What do fish use to breathe underwater? | gills | lungs | fins | tails
What part of a plant takes in water from the soil? | roots | flowers | fruit | seeds
What do green plants need from the Sun to make food? | light | sound | sand | salt
What process lets plants make food from light? | photosynthesis | digestion | erosion | melting
What do we call animals that eat only plants? | herbivores | carnivores | insects | fish
What do we call animals that eat only meat? | carnivores | herbivores | insects | plants
What is the hardest natural material? | diamond | chalk | wood | rubber
What does a thermometer measure? | temperature | weight | distance | speed
What do people use to look at faraway stars? | telescope | microscope | stethoscope | compass
What do scientists use to see tiny things like cells? | microscope | telescope | compass | scale
In which direction does a compass needle point? | north | south | east | west
Which metal is strongly attracted to a magnet? | iron | gold | copper | silver
What is the center of an atom called? | nucleus | shell | skin | crust
What electric charge does an electron have? | negative | positive | neutral | none
What do we call water that falls from clouds as drops? | rain | fog | dew | frost
What is it called when liquid water turns into vapor? | evaporation | freezing | melting | rusting
What happens to ice when it gets warm? | it melts | it freezes | it grows | it burns
Which blood cells fight infections? | white blood cells | red blood cells | skin cells | hair cells
What does the heart pump around the body? | blood | air | food | sand
What covers most of the surface of the Earth? | water | sand | ice | forest
What is the thin rocky outer layer of the Earth called? | crust | core | mantle | orbit
What is the innermost part of the Earth called? | core | crust | surface | sky
What do solar panels turn into electricity? | sunlight | wind | coal | sound
What is a scientist who studies the stars called? | astronomer | geologist | chemist | dentist
What do plants give off that people breathe in? | oxygen | carbon dioxide | smoke | helium
About how many hours does the Earth take to spin once? | 24 | 7 | 60 | 100
How long does it take the Earth to go around the Sun? | one year | one day | one week | one hour
What do cows mostly eat? | grass | meat | fish | insects
What do pandas mostly eat? | bamboo | fish | meat | cheese
Which animal is known for its very long neck? | giraffe | pig | rabbit | mouse
What is the largest animal on Earth? | blue whale | elephant | giraffe | horse
What is the fastest land animal? | cheetah | turtle | snail | cow
Which animal has a long trunk? | elephant | giraffe | horse | lion
Which bird cannot fly and lives in Antarctica? | penguin | eagle | parrot | owl
"""

ANIMAL_CLASSES: tuple[tuple[str, str], ...] = (
    ("dog", "mammal"), ("whale", "mammal"), ("horse", "mammal"), ("eagle", "bird"),
    ("owl", "bird"), ("parrot", "bird"), ("shark", "fish"), ("salmon", "fish"),
    ("snake", "reptile"), ("crocodile", "reptile"), ("lizard", "reptile"), ("frog", "amphibian"),
    ("ant", "insect"), ("bee", "insect"),
)
ANIMAL_CLASS_NAMES = ("mammal", "bird", "fish", "reptile", "amphibian", "insect")

STATES_OF_MATTER: tuple[tuple[str, str], ...] = (
    ("steam", "gas"), ("ice", "solid"), ("milk", "liquid"), ("a rock", "solid"),
    ("air", "gas"), ("orange juice", "liquid"),
)
STATE_NAMES = ("solid", "liquid", "gas", "plasma")

# --- commonsense -----------------------------------------------------------------------------

COMMONSENSE = """
How many days are there in a week? | seven | five | ten | twelve
How many months are there in a year? | twelve | seven | ten | thirty
How many hours are there in a day? | 24 | 12 | 60 | 7
How many minutes are there in an hour? | 60 | 24 | 100 | 12
How many legs does a dog have? | four | two | six | eight
How many wheels does a bicycle have? | two | three | four | six
How many sides does a triangle have? | three | four | five | six
How many sides does a square have? | four | three | five | eight
What color is a ripe banana? | yellow | blue | purple | pink
What color is fresh grass? | green | red | blue | orange
What color is fresh snow? | white | green | red | blue
What color is the sky on a clear sunny day? | blue | green | red | brown
What color are ripe strawberries? | red | blue | white | black
What color is coal? | black | white | yellow | pink
What color is milk? | white | green | black | red
What do people use to cut paper? | scissors | spoon | pillow | cup
What do people use to unlock a door? | key | fork | sock | brush
What do people use to brush their teeth? | toothbrush | hammer | spoon | pencil
What do people use to dry themselves after a shower? | towel | plate | book | shoe
What do people use to stay dry in the rain? | umbrella | fan | spoon | candle
What do people use to eat soup? | spoon | knife | comb | hammer
What do people use to take photos? | camera | kettle | broom | ladder
What do people use to sweep the floor? | broom | spoon | camera | towel
What do people use to reach a high shelf? | ladder | spoon | pillow | towel
What do people usually sleep on? | bed | stove | sink | shelf
Where do people keep food cold? | refrigerator | oven | bathtub | closet
Where do people go to borrow books? | library | bakery | airport | stadium
Where do people go to catch a plane? | airport | library | bakery | farm
Where do people go to buy bread? | bakery | library | airport | hospital
Where do sick people go to be treated by doctors? | hospital | library | stadium | cinema
Where do children go to learn to read and write? | school | airport | garage | stadium
Where do people go to watch a movie? | cinema | bakery | garage | hospital
Where do people keep their car at home? | garage | kitchen | bedroom | bathroom
Where do people cook food at home? | kitchen | bathroom | garage | bedroom
Where do fish live? | water | trees | deserts | clouds
Where do birds usually build their nests? | trees | rivers | oceans | clouds
What do people do when they are hungry? | eat | sleep | run | sing
What do people do when they are thirsty? | drink | sleep | sing | read
What do people do when they are very tired? | sleep | run | shout | dance
What do people wear on their feet? | shoes | gloves | hats | scarves
What do people wear on their hands when it is cold? | gloves | shoes | belts | glasses
What do people wear to see better? | glasses | gloves | shoes | scarves
What do cows give us to drink? | milk | juice | tea | coffee
What do chickens lay? | eggs | milk | wool | honey
What do we get from sheep to make sweaters? | wool | honey | eggs | milk
What sound does a dog make? | bark | meow | moo | quack
What sound does a cat make? | meow | bark | moo | quack
What sound does a cow make? | moo | bark | meow | quack
What sound does a duck make? | quack | moo | bark | meow
Which season is usually the coldest? | winter | summer | spring | autumn
Which season is usually the hottest? | summer | winter | spring | autumn
What is the first meal of the day called? | breakfast | lunch | dinner | dessert
When do most people sleep? | at night | at noon | at lunch | at breakfast
What falls from many trees in autumn? | leaves | stones | shoes | fish
What do people use to pay in a shop? | money | leaves | sand | stones
Which is the biggest land animal? | elephant | mouse | rabbit | cat
What is the evening meal called? | dinner | breakfast | brunch | lunch
What gives off heat and flames? | fire | ice | snow | frost
What do people add to tea to make it sweet? | sugar | salt | pepper | vinegar
Which animal has wings and feathers? | bird | fish | cow | snake
"""

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)

# --- word meaning ----------------------------------------------------------------------------

OPPOSITES = """
hot | cold | tall | green | happy
big | small | red | fast | loud
up | down | left | near | early
fast | slow | tall | happy | green
happy | sad | tall | wet | loud
day | night | week | year | hour
open | closed | green | heavy | happy
full | empty | tall | green | loud
wet | dry | tall | red | loud
early | late | tall | soft | blue
rich | poor | tall | loud | green
loud | quiet | tall | red | cold
clean | dirty | tall | quick | round
strong | weak | blue | round | early
thick | thin | blue | early | loud
buy | sell | eat | sleep | jump
push | pull | eat | sing | sleep
first | last | blue | wet | sweet
inside | outside | above | behind | beside
true | false | round | early | green
heavy | light | round | early | blue
north | south | east | west | up
near | far | tall | green | quick
remember | forget | swim | jump | sing
laugh | cry | eat | jump | swim
win | lose | eat | sing | swim
cheap | expensive | green | round | tall
asleep | awake | hungry | yellow | round
friend | enemy | table | river | shoe
young | old | green | loud | wet
"""

SYNONYMS = """
big | large | small | green | slow
small | little | huge | blue | loud
fast | quick | slow | green | heavy
happy | glad | sad | tall | wet
begin | start | finish | sleep | sell
finish | end | start | eat | climb
shut | close | open | eat | sing
rich | wealthy | poor | green | quiet
smart | clever | foolish | round | wet
scared | afraid | brave | green | round
sick | ill | healthy | blue | round
gift | present | table | river | shoe
car | automobile | bicycle | tree | bread
shout | yell | whisper | eat | sleep
huge | enormous | tiny | blue | quiet
pretty | beautiful | ugly | wet | slow
correct | right | wrong | tall | soft
quiet | silent | loud | red | round
stone | rock | leaf | cloud | river
jump | leap | sit | crawl | sleep
talk | speak | listen | sleep | swim
sad | unhappy | joyful | tall | round
easy | simple | hard | green | tall
story | tale | table | river | shoe
"""

BABY_ANIMALS: tuple[tuple[str, str], ...] = (
    ("dog", "puppy"), ("cat", "kitten"), ("cow", "calf"), ("sheep", "lamb"), ("horse", "foal"),
    ("duck", "duckling"), ("bear", "cub"), ("chicken", "chick"),
)

JOBS: tuple[tuple[str, str], ...] = (
    ("teaches children at a school", "teacher"), ("flies airplanes", "pilot"),
    ("cooks food in a restaurant", "chef"), ("grows crops on a farm", "farmer"),
    ("puts out fires", "firefighter"), ("takes care of people's teeth", "dentist"),
    ("bakes bread", "baker"), ("writes books", "writer"),
    ("helps doctors care for patients in a hospital", "nurse"),
    ("catches fish from a boat", "fisherman"),
)

KINDS_OF_WORD = """
color | purple | table | river | spoon
fruit | apple | chair | river | shoe
animal | horse | spoon | cloud | window
number | seven | green | happy | table
vegetable | carrot | hammer | shirt | cloud
tool | hammer | banana | cloud | river
body part | elbow | table | river | cloud
piece of furniture | chair | apple | river | cloud
"""

# --- reading ---------------------------------------------------------------------------------

NAMES: tuple[tuple[str, str], ...] = (
    ("Anna", "she"), ("Tom", "he"), ("Maria", "she"), ("David", "he"), ("Sara", "she"),
    ("Peter", "he"), ("Lucy", "she"), ("James", "he"), ("Emma", "she"), ("Daniel", "he"),
    ("Nina", "she"), ("Sam", "he"), ("Laura", "she"), ("Ben", "he"), ("Julia", "she"),
    ("Mark", "he"),
)
READING_POOLS: dict[str, tuple[str, ...]] = {
    "city": ("Paris", "London", "Rome", "Madrid", "Berlin", "Tokyo", "Cairo", "Lisbon",
             "Dublin", "Vienna"),
    "pet": ("dog", "cat", "rabbit", "parrot", "hamster", "goldfish", "turtle"),
    "job": ("nurse", "teacher", "baker", "pilot", "farmer", "painter", "driver"),
    "day": DAYS,
    "food": ("a cake", "a pie", "cookies", "bread", "muffins", "a tart"),
    "count": ("two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "color": ("red", "blue", "green", "yellow", "black", "white", "orange", "purple"),
    "item": ("bicycle", "jacket", "umbrella", "lamp", "backpack", "kettle", "clock"),
    "price": ("12", "15", "20", "25", "30", "40", "45", "60"),
    "relative": ("grandmother", "grandfather", "aunt", "uncle", "cousin", "sister", "brother"),
    "topic": ("birds", "ships", "volcanoes", "trees", "castles", "planets", "trains"),
    "sport": ("tennis", "football", "basketball", "volleyball", "golf", "hockey"),
    "instrument": ("piano", "guitar", "violin", "drums", "flute", "trumpet"),
    "tree": ("apple", "cherry", "lemon", "pear", "plum", "orange"),
}

PASSAGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "{Name} lives in {city} with {his} {pet}. {He} works as a {job} and walks to work "
        "every morning.",
        (("Where does {Name} live?", "city"), ("What pet does {Name} have?", "pet"),
         ("What is {Name}'s job?", "job")),
    ),
    (
        "On {day}, {Name} baked {food} for {his} {relative}'s birthday. The party was in the "
        "garden, and {count} friends came.",
        (("On which day did {Name} bake?", "day"), ("What did {Name} bake?", "food"),
         ("How many friends came to the party?", "count")),
    ),
    (
        "{Name} went to a shop and bought a {color} {item}. It cost {price} dollars, and {he} "
        "paid in cash.",
        (("What color was the {item}?", "color"), ("What did {Name} buy?", "item"),
         ("How many dollars did the {item} cost?", "price")),
    ),
    (
        "Last summer, {Name} took a train to {city} to visit {his} {relative}. The trip took "
        "{count} hours, and {he} read a book about {topic} on the way.",
        (("Which city did {Name} travel to?", "city"), ("Who did {Name} visit?", "relative"),
         ("How many hours did the trip take?", "count"),
         ("What was the book about?", "topic")),
    ),
    (
        "{Name}'s favourite sport is {sport}. {He} plays it with {his} friends every {day} "
        "after school.",
        (("What is {Name}'s favourite sport?", "sport"),
         ("On which day does {Name} play {sport}?", "day")),
    ),
    (
        "{Name} plays the {instrument} in a small band. The band practises every {day} "
        "evening in a garage.",
        (("What instrument does {Name} play?", "instrument"),
         ("On which evening does the band practise?", "day")),
    ),
    (
        "In the spring, {Name} planted {count} {tree} trees in {his} garden. {He} waters them "
        "every evening with {his} {relative}.",
        (("How many trees did {Name} plant?", "count"),
         ("What kind of trees did {Name} plant?", "tree"),
         ("Who helps {Name} water the trees?", "relative")),
    ),
)
"""``(passage template, ((question template, answered slot), ...))``. ``{Name}`` is the person,
``{he}``/``{He}``/``{his}`` their pronouns; the other fields are :data:`READING_POOLS` slots.
A question about ``relative`` is answered as ``"{his} {relative}"`` (e.g. "her aunt")."""
