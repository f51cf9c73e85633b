#!/usr/bin/env python3
"""Writes a synthetic, shop-shaped dataset for timing Omakase at scale (issue 18, point 4).

    python3 scripts/make-scale-dataset.py OUT_DIR [--items 200000] [--interactions 5000000]
        [--users N] [--seed 1] [--zipf 1.0] [--session-mean 5]

OUT_DIR gets the dataset format of README.md § "Dataset format":
- items.jsonl: `item_id`, `title`, `description`, `image` (always null: no pictures, so the image
  encoder never runs), and as metadata `category` ("Kitchen > Cookware"), `brand`, `price`. The text
  is composed from word lists per department and category, so items of one category share their
  nouns and phrases the way a shop's do, and the default text template ("{title}. {description}")
  reads them;
- interactions.csv: `user_id,item_id,timestamp` (integer seconds, strictly increasing per user),
  written user by user;
- README.md: the parameters it was made with.

What makes it shop-shaped rather than uniform noise:
- item popularity is a power law (Zipf-Mandelbrot: weight 1/(rank + 20)^zipf over a random ranking,
  the offset keeping the head item near 0.5% of traffic rather than several percent);
- user activity is heavy-tailed too (a few users with hundreds of views, most with a handful; every
  user has at least MIN_EVENTS, so the warm leave-one-out split keeps them all);
- each user has 1-4 favourite categories; views come in sessions (geometric length, mean
  --session-mean) that mostly stay in one category, sometimes step to a sibling category of the same
  department or to another favourite. So the next item is predictable from the previous ones, which
  is the signal a sequential recommender learns; items inside a category are drawn by popularity.

Only the standard library. Seeded: the same arguments give byte-identical files. Written streaming
(items one line at a time, interactions one user at a time), so memory stays at a few arrays of
--items and --users numbers however many interactions are asked for. Files are written as NAME.tmp
and renamed, so a killed run never leaves a half file under the real name.
"""

import argparse
import json
import math
import random
import sys
import time
from array import array
from bisect import bisect_right
from itertools import accumulate
from pathlib import Path

# Every user has at least this many views: the warm protocol holds out each user's last two items
# (validation and test) and needs something before them to learn from.
MIN_EVENTS = 5
# Zipf-Mandelbrot offset: without it (pure Zipf, s = 1) the single top item of 200k takes ~8% of all
# views, far more concentrated than a shop's catalogue.
POPULARITY_OFFSET = 20
# One user's view count is capped so that a runaway Pareto draw cannot make a bot-like user.
MAX_EVENTS_PER_USER = 5000
# Time: users start within the first year of a two-year log; a heavy user's sessions come closer
# together so that most histories end inside the log.
LOG_START = 1_672_531_200  # 2023-01-01 UTC
START_SPREAD_S = 365 * 86400
LOG_SPAN_S = 2 * 365 * 86400
# Within a session views are tens of seconds apart; sessions are hours to days apart.
VIEW_GAP_MIN_S, VIEW_GAP_MEAN_S = 5, 60
SESSION_GAP_MIN_S, SESSION_GAP_MEAN_S = 3600, 4 * 86400
# Inside a session: stay in the category, step to a sibling in the department, or jump.
P_LEAVE_CATEGORY = 0.3  # after each view; a run in one category has mean length 1 / 0.3 ~ 3.3
P_SIBLING = 0.5  # of the leaves: a sibling category of the same department (Cookware -> Bakeware)
P_EXPLORE = 0.1  # a session (or jump) starting outside the user's favourites

# ---------------------------------------------------------------------------------------------
# Word lists. Department -> (materials, {category: (nouns, features, uses, variants)}).
# Strings are "|"-separated to keep the table readable.

GENERIC_ADJECTIVES = (
    "Classic|Compact|Premium|Everyday|Lightweight|Heavy-Duty|Deluxe|Essential|Modern|Vintage|Slim|"
    "Eco|Pro|Ultra|Soft|Portable|Foldable|Organic|Handmade|Signature|Original|Urban|Nordic|Rustic|"
    "Minimalist|Travel|Family|Studio|Outdoor|Luxury"
).split("|")
COLOURS = (
    "Black|White|Grey|Charcoal|Navy|Sky Blue|Forest Green|Sage|Olive|Burgundy|Red|Coral|Mustard|"
    "Sand|Beige|Cream|Terracotta|Lavender|Blush Pink|Teal|Silver|Gold|Copper|Walnut|Oak"
).split("|")
CLOSINGS = (
    "Free returns within 30 days.|Ships in recyclable packaging.|Backed by a two-year warranty.|"
    "A customer favourite.|Makes a thoughtful gift.|Designed in-house and tested by our team.|"
    "Easy to clean and built to last.|Pairs well with the rest of the collection.|"
    "Check the size guide before ordering.|Limited seasonal stock."
).split("|")
SENTENCES = (
    "{adj} {noun} {use}.|This {noun} is {feature}.|Our {adj} {noun}, {feature}.|"
    "Made from {material} and {feature}.|The {brand} {noun} is {feature}, {use}.|"
    "Built {use}, this {noun} is {feature}."
).split("|")
BRAND_SYLLABLES = (
    "nor|vik|al|ba|co|ra|lu|me|so|ta|ve|ki|lo|ma|pe|zen|tor|ion|ex|ly|ar|bel|cas|dor|fin|gal|hav|"
    "jor|kel|lin|mor|nev|ost|pra|quin|ros|sil|tev|ul|wen"
).split("|")
BRANDS_PER_DEPARTMENT = 24


def split(text):
    return [part.strip() for part in text.split("|")]


def category(nouns, features, uses, variants):
    return split(nouns), split(features), split(uses), split(variants)


DEPARTMENTS = {
    "Kitchen": ("stainless steel|cast iron|bamboo|ceramic|borosilicate glass|aluminium|silicone|beech wood", {
        "Cookware": category(
            "frying pan|saucepan|stock pot|wok|casserole dish|saute pan|griddle pan|milk pan",
            "induction-ready|non-stick coated|oven safe to 220 degrees|fitted with a stay-cool handle|"
            "dishwasher safe|supplied with a glass lid|evenly heating|PFAS-free",
            "for everyday cooking|for searing and browning|for slow-cooked stews|for family meals|"
            "for quick weeknight dinners",
            "20 cm|24 cm|28 cm|32 cm|Set of 3|Set of 5"),
        "Bakeware": category(
            "baking tray|loaf tin|cake tin|muffin tray|pie dish|cooling rack|springform pan|tart tin",
            "non-stick coated|warp resistant|freezer safe|oven safe to 250 degrees|easy release|"
            "fitted with a loose base|dishwasher safe",
            "for bread and cakes|for weekend baking|for roasting vegetables|for birthday bakes",
            "20 cm|23 cm|26 cm|12 cup|Set of 2|Set of 3"),
        "Knives": category(
            "chef's knife|paring knife|bread knife|santoku knife|knife block set|steak knife set|"
            "utility knife|knife sharpener",
            "forged from a single piece of steel|razor sharp|balanced for control|full tang|"
            "fitted with an ergonomic handle|hand honed|rust resistant",
            "for precise slicing|for chopping vegetables|for crusty bread|for carving roasts",
            "9 cm|15 cm|20 cm|23 cm|Set of 4|Set of 6"),
        "Kitchen Utensils": category(
            "spatula|whisk|ladle|tongs|peeler|grater|measuring spoons|colander|salad spinner",
            "heat resistant|dishwasher safe|gentle on non-stick pans|fitted with a hanging loop|"
            "BPA-free|easy to grip",
            "for everyday cooking|for baking and mixing|for serving|for prepping vegetables",
            "Single|Set of 3|Set of 5|Small|Large"),
        "Small Appliances": category(
            "blender|toaster|kettle|air fryer|stand mixer|food processor|hand blender|slow cooker|"
            "rice cooker|juicer",
            "fitted with a 1200 W motor|quiet in use|easy to clean|fitted with an auto shut-off|"
            "supplied with three speed settings|compact on the worktop|energy efficient",
            "for smoothies and soups|for quick breakfasts|for healthier frying|for batch cooking",
            "1.5 L|1.7 L|4 L|5.5 L|2 slice|4 slice"),
        "Coffee & Tea": category(
            "french press|pour-over dripper|espresso machine|coffee grinder|teapot|milk frother|"
            "travel mug|tea infuser|moka pot",
            "double walled|fitted with a burr grinder|leak proof|keeps drinks hot for hours|"
            "supplied with a reusable filter|barista grade",
            "for the perfect morning brew|for loose leaf tea|for coffee on the go|for espresso lovers",
            "350 ml|500 ml|1 L|3 cup|6 cup|8 cup"),
        "Tableware": category(
            "dinner plate|side plate|pasta bowl|mug|serving platter|dinner set|wine glass|tumbler|"
            "cutlery set",
            "microwave safe|dishwasher safe|chip resistant|glazed by hand|stackable|lead-free",
            "for everyday dining|for entertaining guests|for a relaxed brunch|for the table",
            "Set of 2|Set of 4|Set of 6|Set of 12|16 piece"),
        "Food Storage": category(
            "food container|lunch box|storage jar|bread bin|spice rack|vacuum canister|bento box|"
            "reusable food wrap",
            "airtight|leak proof|freezer safe|BPA-free|stackable|microwave safe|supplied with clip lids",
            "for meal prep|for packed lunches|for dry goods|for keeping leftovers fresh",
            "500 ml|1 L|2 L|Set of 3|Set of 5|Set of 10"),
    }),
    "Home": ("cotton|linen|wool|velvet|rattan|oak|glass|recycled polyester", {
        "Bedding": category(
            "duvet cover set|fitted sheet|pillowcase pair|duvet|pillow|mattress topper|bedspread|"
            "weighted blanket",
            "woven from long-staple cotton|breathable|hypoallergenic|machine washable|"
            "finished with a button closure|soft and cool to the touch",
            "for a restful night|for the guest room|for warm summer nights|for cosy winter evenings",
            "Single|Double|King|Super King|4.5 tog|10.5 tog"),
        "Bath Towels": category(
            "bath towel|hand towel|bath sheet|towel bale|bath mat|bathrobe|face cloth set",
            "highly absorbent|quick drying|600 gsm|woven from Turkish cotton|soft and fluffy|"
            "machine washable",
            "for the family bathroom|for the gym|for the beach|for a spa-like feel at home",
            "Hand|Bath|Sheet|Set of 2|Set of 4|Bale of 6"),
        "Lighting": category(
            "table lamp|floor lamp|pendant shade|ceiling light|desk lamp|wall light|string lights|"
            "LED bulb",
            "dimmable|supplied with a warm white bulb|energy efficient|fitted with a fabric shade|"
            "touch controlled|easy to install",
            "for reading corners|for the living room|for a soft evening glow|for the home office",
            "Small|Medium|Large|E27|GU10|10 m"),
        "Rugs": category(
            "area rug|runner rug|doormat|washable rug|shaggy rug|jute rug|outdoor rug",
            "hand woven|non-shedding|machine washable|supplied with a non-slip backing|low pile|"
            "stain resistant",
            "for the hallway|for the living room|for the bedroom|for busy family homes",
            "60 x 90 cm|120 x 170 cm|160 x 230 cm|200 x 290 cm|Runner 66 x 200 cm"),
        "Cushions & Throws": category(
            "cushion cover|filled cushion|throw blanket|floor cushion|knitted throw|bolster cushion",
            "finished with a hidden zip|super soft|reversible|feather filled|chunky knit|"
            "machine washable",
            "for the sofa|for snuggling up|for layering on the bed|for the reading nook",
            "45 x 45 cm|50 x 50 cm|30 x 50 cm|130 x 170 cm|Set of 2"),
        "Storage & Organisation": category(
            "storage basket|shelving unit|storage box|shoe rack|drawer organiser|coat hook|"
            "laundry basket|under-bed storage bag",
            "stackable|foldable when not in use|supplied with handles|easy to assemble|sturdy|"
            "moisture resistant",
            "for tidying the hallway|for the wardrobe|for kids' toys|for small spaces",
            "Small|Medium|Large|Set of 3|3 tier|5 tier"),
        "Candles & Home Fragrance": category(
            "scented candle|reed diffuser|wax melt set|tea light set|pillar candle|room spray|"
            "essential oil diffuser",
            "hand poured|made with soy wax|long burning|scented with essential oils|"
            "presented in a reusable jar|clean burning",
            "for relaxing evenings|for a fresh-smelling home|for the bathroom|for gifting",
            "Fig|Cedar|Lavender|Sea Salt|Amber|Vanilla|Bergamot"),
        "Wall Decor": category(
            "framed print|wall mirror|picture frame|canvas art|wall clock|floating shelf|photo frame set",
            "ready to hang|finished by hand|supplied with fixings|printed on archival paper|"
            "fitted with a silent movement",
            "for the gallery wall|for the living room|for the hallway|for a personal touch",
            "A4|A3|30 x 40 cm|50 x 70 cm|60 cm|Set of 3"),
    }),
    "Clothing": ("organic cotton|merino wool|linen|denim|recycled polyester|cashmere|jersey|fleece", {
        "T-Shirts": category(
            "crew neck t-shirt|v-neck t-shirt|long sleeve top|graphic tee|relaxed fit tee|polo shirt|"
            "vest top",
            "cut for a relaxed fit|pre-shrunk|breathable|soft washed|finished with a ribbed neckline",
            "for everyday wear|for layering|for warm days|for the weekend",
            "XS|S|M|L|XL|XXL"),
        "Jeans & Trousers": category(
            "slim jeans|straight leg jeans|wide leg trousers|chinos|cargo trousers|joggers|"
            "tailored trousers",
            "stretch for comfort|mid rise|fitted with five pockets|garment dyed|tapered at the ankle",
            "for everyday wear|for the office|for relaxed weekends|for smart occasions",
            "W28 L30|W30 L32|W32 L32|W34 L32|W36 L34|UK 10|UK 12|UK 14"),
        "Dresses": category(
            "midi dress|maxi dress|wrap dress|shirt dress|slip dress|jumper dress|smock dress",
            "fully lined|finished with a tie waist|flowing|fitted with side pockets|crease resistant",
            "for summer days|for special occasions|for the office|for holidays",
            "UK 6|UK 8|UK 10|UK 12|UK 14|UK 16"),
        "Jackets & Coats": category(
            "rain jacket|puffer jacket|wool coat|denim jacket|parka|fleece jacket|gilet|trench coat",
            "waterproof|windproof|insulated|packable|fitted with a detachable hood|breathable",
            "for wet commutes|for winter walks|for cold mornings|for travelling light",
            "XS|S|M|L|XL|XXL"),
        "Knitwear": category(
            "crew neck jumper|cardigan|roll neck jumper|knitted vest|chunky knit jumper|zip-up knit",
            "knitted from soft yarn|warm without bulk|cut for a relaxed fit|finished with ribbed cuffs",
            "for layering|for chilly evenings|for the office|for autumn weekends",
            "XS|S|M|L|XL|XXL"),
        "Socks & Underwear": category(
            "ankle socks|crew socks|boxer briefs|briefs|bralette|thermal socks|trainer socks",
            "breathable|cushioned underfoot|seam-free|made with stretch cotton|moisture wicking",
            "for everyday comfort|for sports|for cold days|for long walks",
            "Pack of 3|Pack of 5|Pack of 7|S|M|L"),
        "Activewear": category(
            "leggings|sports bra|running shorts|training top|track jacket|gym shorts|base layer",
            "sweat wicking|four-way stretch|quick drying|squat proof|fitted with reflective details",
            "for the gym|for running|for yoga|for high-intensity training",
            "XS|S|M|L|XL"),
        "Sleepwear": category(
            "pyjama set|nightdress|dressing gown|lounge pants|sleep shirt|slipper socks",
            "brushed for softness|breathable|finished with piping|relaxed fitting",
            "for lazy Sundays|for a good night's sleep|for lounging at home",
            "XS|S|M|L|XL"),
    }),
    "Shoes": ("leather|suede|canvas|mesh|recycled rubber|nubuck|faux shearling", {
        "Running Shoes": category(
            "road running shoe|trail running shoe|racing flat|stability running shoe|cushioned trainer",
            "lightweight|responsive|fitted with a grippy outsole|breathable|supportive|"
            "fitted with a carbon plate",
            "for long runs|for race day|for muddy trails|for daily training",
            "UK 5|UK 6|UK 7|UK 8|UK 9|UK 10|UK 11"),
        "Sneakers": category(
            "low-top sneaker|high-top sneaker|slip-on sneaker|court shoe|skate shoe",
            "fitted with a padded collar|easy to clean|finished with contrast stitching|comfortable all day",
            "for everyday wear|for city walks|for casual Fridays",
            "UK 4|UK 5|UK 6|UK 7|UK 8|UK 9|UK 10"),
        "Boots": category(
            "chelsea boot|hiking boot|ankle boot|wellington boot|lace-up boot|snow boot",
            "waterproof|fitted with a lug sole|warm lined|fitted with a side zip|hard wearing",
            "for wet weather|for hillwalking|for winter|for smart casual outfits",
            "UK 4|UK 5|UK 6|UK 7|UK 8|UK 9|UK 10"),
        "Sandals": category(
            "slider|flip-flop|strappy sandal|walking sandal|espadrille",
            "cushioned footbed|quick drying|adjustable straps|lightweight",
            "for the beach|for summer holidays|for poolside lounging",
            "UK 4|UK 5|UK 6|UK 7|UK 8|UK 9"),
        "Slippers": category(
            "mule slipper|moccasin slipper|boot slipper|open-toe slipper",
            "fitted with a memory foam insole|warm lined|fitted with a non-slip sole|machine washable",
            "for cosy evenings|for cold floors|for gifting",
            "S|M|L|XL"),
    }),
    "Electronics": ("aluminium|recycled plastic|tempered glass|silicone|braided nylon|ABS", {
        "Headphones": category(
            "wireless earbuds|over-ear headphones|noise cancelling headphones|sports earbuds|"
            "on-ear headphones|kids' headphones",
            "fitted with active noise cancelling|rated for 30 hours of battery life|sweat resistant|"
            "foldable|supplied with a charging case|Bluetooth 5.3",
            "for the commute|for workouts|for long flights|for video calls",
            "Black|White|Navy|Sand"),
        "Speakers": category(
            "bluetooth speaker|smart speaker|soundbar|party speaker|portable radio|bookshelf speaker",
            "waterproof|rated for 20 hours of playback|voice controlled|rich in bass|pairable in stereo",
            "for the garden|for the living room|for parties|for the kitchen",
            "Mini|Standard|Max"),
        "Phone Cases": category(
            "phone case|screen protector|wallet case|rugged case|clear case|camera lens protector",
            "shock absorbent|slim|MagSafe compatible|scratch resistant|supplied with a card slot",
            "for everyday protection|for outdoor adventures|for a minimal look",
            "iPhone 15|iPhone 15 Pro|Galaxy S24|Pixel 8|iPhone 14"),
        "Chargers & Cables": category(
            "USB-C cable|wall charger|wireless charger|power bank|car charger|charging dock|"
            "multi-port charger",
            "fast charging|tangle free|65 W|supplied with a braided cable|compact for travel|"
            "safety certified",
            "for phones and laptops|for travel|for the bedside table|for the car",
            "1 m|2 m|3 m|10000 mAh|20000 mAh"),
        "Smart Home": category(
            "smart plug|smart bulb|video doorbell|security camera|thermostat|motion sensor|smart hub",
            "app controlled|works with voice assistants|energy monitoring|easy to set up|"
            "fitted with night vision",
            "for a connected home|for peace of mind|for saving energy|for automating routines",
            "Single|Pack of 2|Pack of 4|Starter Kit"),
        "Cameras": category(
            "action camera|instant camera|mirrorless camera|camera tripod|camera bag|memory card|"
            "dash cam",
            "4K ready|image stabilised|waterproof to 10 m|compact|supplied with a spare battery",
            "for travel photography|for vlogging|for adventures|for capturing memories",
            "32 GB|64 GB|128 GB|Kit|Body Only"),
        "Computer Accessories": category(
            "wireless mouse|mechanical keyboard|laptop stand|USB hub|webcam|monitor arm|mouse mat|"
            "laptop sleeve",
            "ergonomic|rechargeable|adjustable|plug and play|quiet clicking|backlit",
            "for the home office|for gaming|for working on the go|for long workdays",
            "Compact|Full Size|13 inch|15 inch|4 port|7 port"),
    }),
    "Sports & Outdoors": ("nylon|aluminium|neoprene|recycled polyester|natural rubber|carbon fibre", {
        "Yoga & Fitness": category(
            "yoga mat|resistance bands|dumbbell set|kettlebell|foam roller|skipping rope|yoga block|"
            "pull-up bar",
            "non-slip|extra thick|portable|adjustable|supplied with a carry strap|sweat resistant",
            "for home workouts|for yoga practice|for strength training|for recovery days",
            "4 mm|6 mm|2 kg|5 kg|10 kg|Set of 3"),
        "Cycling": category(
            "bike helmet|bike light set|cycling gloves|bike lock|saddle bag|bike pump|water bottle cage",
            "lightweight|USB rechargeable|high visibility|weatherproof|fitted with a quick-release mount",
            "for the commute|for road riding|for mountain trails|for night rides",
            "S|M|L|One Size"),
        "Camping": category(
            "two-person tent|sleeping bag|camping stove|camping chair|head torch|cool box|sleeping mat|"
            "lantern",
            "packs down small|waterproof|rated to minus 5 degrees|quick to pitch|lightweight",
            "for festival weekends|for wild camping|for family trips|for backpacking",
            "1 Person|2 Person|4 Person|Regular|Long"),
        "Hiking": category(
            "hiking backpack|trekking poles|hydration bladder|waterproof trousers|map case|"
            "hiking socks",
            "lightweight|adjustable|fitted with a rain cover|breathable|supportive",
            "for day hikes|for multi-day treks|for hill walking|for rainy trails",
            "20 L|30 L|45 L|S|M|L"),
        "Swimming": category(
            "swim goggles|swimsuit|swim shorts|swim cap|kickboard|dry robe|swim bag",
            "chlorine resistant|anti-fog|quick drying|UV protective|adjustable",
            "for lane swimming|for open water|for the beach|for swimming lessons",
            "XS|S|M|L|XL|One Size"),
    }),
    "Beauty": ("natural oils|shea butter|vitamin C|hyaluronic acid|aloe vera|argan oil", {
        "Skincare": category(
            "moisturiser|cleanser|serum|face mask|eye cream|toner|sunscreen|exfoliator",
            "fragrance-free|suitable for sensitive skin|vegan|dermatologically tested|lightweight",
            "for dry skin|for a morning routine|for a glowing complexion|for daily protection",
            "30 ml|50 ml|100 ml|150 ml|200 ml"),
        "Hair Care": category(
            "shampoo|conditioner|hair oil|hair mask|dry shampoo|hair dryer|straightener|hair brush",
            "sulphate-free|salon quality|nourishing|heat protective|fitted with ionic technology",
            "for curly hair|for everyday washing|for damaged hair|for volume",
            "250 ml|400 ml|1 L|Travel Size"),
        "Makeup": category(
            "lipstick|mascara|foundation|eyeshadow palette|concealer|blusher|brow pencil|"
            "makeup brush set",
            "long lasting|buildable|cruelty-free|smudge proof|blendable",
            "for a natural look|for evenings out|for everyday wear",
            "Shade 01|Shade 02|Shade 03|Shade 04|Shade 05"),
        "Fragrance": category(
            "eau de parfum|eau de toilette|body mist|solid perfume|fragrance gift set",
            "long lasting|fresh and floral|warm and woody|citrus scented|presented in a glass bottle",
            "for everyday wear|for evenings out|for gifting",
            "30 ml|50 ml|100 ml"),
        "Bath & Body": category(
            "body wash|bath soak|body lotion|hand cream|body scrub|bath bomb set|soap bar",
            "gently exfoliating|deeply moisturising|vegan|scented with essential oils|pH balanced",
            "for relaxing baths|for dry hands|for a daily shower|for gifting",
            "100 ml|250 ml|500 ml|Set of 3|Set of 6"),
    }),
    "Toys & Games": ("wood|recycled plastic|cardboard|plush|felt|metal", {
        "Building Sets": category(
            "building brick set|magnetic tiles|construction kit|marble run|robot kit|train set",
            "compatible with major brands|supplied with instructions|creative|STEM approved|expandable",
            "for ages 6 and up|for creative play|for budding engineers|for family building time",
            "100 pieces|250 pieces|500 pieces|1000 pieces"),
        "Puzzles": category(
            "jigsaw puzzle|3D puzzle|wooden puzzle|floor puzzle|brain teaser set",
            "printed on thick card|precision cut|supplied with a poster|challenging",
            "for rainy afternoons|for family evenings|for puzzle fans|for ages 3 and up",
            "100 pieces|500 pieces|1000 pieces|1500 pieces"),
        "Board Games": category(
            "strategy board game|party game|card game|family board game|cooperative game|chess set",
            "quick to learn|supplied with rules in English|replayable|award winning",
            "for game night|for 2 to 6 players|for families|for ages 8 and up",
            "Standard|Deluxe Edition|Travel Edition|Expansion"),
        "Plush Toys": category(
            "teddy bear|plush bunny|soft dinosaur|plush unicorn|comfort blanket|hand puppet",
            "super soft|surface washable|safety tested|huggable",
            "for bedtime cuddles|for newborns|for gifting",
            "Small|Medium|Large|25 cm|40 cm"),
        "Outdoor Play": category(
            "scooter|trampoline|paddling pool|swing set|kite|water pistol|sandpit",
            "sturdy|weather resistant|easy to assemble|foldable|supplied with a safety net",
            "for sunny afternoons|for active kids|for the garden|for ages 5 and up",
            "Small|Medium|Large|6 ft|8 ft|10 ft"),
    }),
    "Garden": ("galvanised steel|terracotta|FSC acacia wood|recycled plastic|rattan|cast aluminium", {
        "Garden Tools": category(
            "pruning shears|garden fork|hand trowel|rake|hedge trimmer|lawn mower|leaf blower|"
            "kneeling pad",
            "rust resistant|ergonomic|cordless|sharp and precise|fitted with a comfortable grip",
            "for pruning roses|for vegetable beds|for tidy lawns|for autumn clean-ups",
            "Single|Set of 3|18 V|36 V"),
        "Planters": category(
            "plant pot|raised bed|hanging basket|window box|self-watering planter|grow bag",
            "frost resistant|supplied with drainage holes|weatherproof|lightweight|glazed",
            "for herbs|for patio displays|for indoor plants|for growing vegetables",
            "15 cm|25 cm|40 cm|60 cm|Set of 3"),
        "Outdoor Furniture": category(
            "garden bench|bistro set|sun lounger|parasol|outdoor dining set|hammock|fire pit",
            "weatherproof|foldable|UV resistant|easy to assemble|supplied with cushions",
            "for the patio|for summer evenings|for small balconies|for entertaining outdoors",
            "2 Seater|4 Seater|6 Seater|Single"),
        "Watering": category(
            "garden hose|watering can|hose reel|sprinkler|water butt|spray gun",
            "kink resistant|expandable|adjustable|lightweight|supplied with connectors",
            "for the vegetable patch|for hanging baskets|for thirsty lawns",
            "10 m|15 m|30 m|5 L|10 L"),
    }),
    "Office": ("recycled paper|vegan leather|steel|bamboo|canvas|aluminium", {
        "Notebooks & Paper": category(
            "notebook|planner|sketchbook|sticky notes|dotted journal|notepad",
            "printed on 100 gsm paper|lay-flat bound|fitted with a ribbon marker|acid-free",
            "for note taking|for planning the week|for sketching|for journaling",
            "A4|A5|A6|Pack of 3"),
        "Pens & Writing": category(
            "gel pen set|fountain pen|fineliner set|highlighter set|mechanical pencil|marker set",
            "quick drying|smooth writing|refillable|smudge resistant|vibrant",
            "for everyday writing|for bullet journaling|for the classroom|for calligraphy",
            "Pack of 5|Pack of 10|Pack of 20|Single"),
        "Desk Accessories": category(
            "desk organiser|monitor stand|desk lamp|document tray|desk mat|cable organiser|pen pot",
            "space saving|sturdy|non-slip|minimal|easy to assemble",
            "for a tidy desk|for the home office|for the study",
            "Small|Large|Set of 2"),
        "Backpacks & Bags": category(
            "laptop backpack|tote bag|messenger bag|rolltop backpack|briefcase|pencil case",
            "water resistant|fitted with a padded laptop sleeve|lightweight|supplied with many pockets",
            "for the commute|for school|for travel|for work",
            "15 L|20 L|25 L|13 inch|16 inch"),
    }),
    "Pets": ("natural rubber|recycled polyester|ceramic|stainless steel|cotton rope|faux fur", {
        "Dog Toys & Gear": category(
            "chew toy|rope toy|ball launcher|dog lead|dog harness|dog collar|treat pouch",
            "durable|tough enough for strong chewers|adjustable|reflective|dishwasher safe",
            "for playful pups|for long walks|for training sessions",
            "S|M|L|XL"),
        "Cat Accessories": category(
            "scratching post|cat tree|cat toy set|litter tray|cat carrier|cat tunnel",
            "sturdy|easy to clean|supplied with dangling toys|space saving",
            "for indoor cats|for curious kittens|for trips to the vet",
            "Small|Medium|Large"),
        "Pet Beds": category(
            "dog bed|cat bed|pet blanket|orthopaedic dog bed|donut bed|crate mat",
            "machine washable|orthopaedic|calming|supplied with a removable cover|non-slip base",
            "for older dogs|for cats who love to curl up|for the car",
            "S|M|L|XL"),
        "Feeding": category(
            "pet bowl|slow feeder|automatic feeder|water fountain|food storage bin|travel bowl",
            "non-slip|dishwasher safe|BPA-free|collapsible",
            "for fast eaters|for busy owners|for walks and travel",
            "Small|Medium|Large|2 L"),
    }),
    "Baby": ("organic cotton|bamboo|silicone|beech wood|muslin", {
        "Baby Clothing": category(
            "sleepsuit|bodysuit multipack|baby romper|sleep bag|knitted cardigan|baby hat",
            "soft on delicate skin|fitted with popper fastenings|breathable|machine washable",
            "for newborns|for everyday wear|for cosy nights",
            "Newborn|0-3 months|3-6 months|6-12 months|12-18 months"),
        "Feeding & Weaning": category(
            "baby bottle|weaning set|high chair|bib set|sippy cup|suction plate|bottle warmer",
            "BPA-free|anti-colic|dishwasher safe|easy to clean|non-slip",
            "for first foods|for bottle feeding|for mealtimes",
            "150 ml|250 ml|Set of 3|Set of 5"),
        "Nursery": category(
            "baby monitor|cot mobile|changing mat|night light|nursery storage basket|cot bumper",
            "calming|easy to clean|supplied with a night vision camera|gentle glow",
            "for the nursery|for peaceful nights|for nappy changes",
            "Single|Set of 2|Set of 3"),
    }),
}


# ---------------------------------------------------------------------------------------------

def brand_names(rng):
    """A department's brands: two or three syllables, capitalised, unique within the department."""
    names = set()
    while len(names) < BRANDS_PER_DEPARTMENT:
        name = "".join(rng.choice(BRAND_SYLLABLES) for _ in range(rng.choice((2, 2, 3))))
        names.add(name.capitalize())
    return sorted(names)


class Catalogue:
    """The category table: each category with its department's materials and brands."""

    def __init__(self, rng):
        self.names = []  # "Kitchen > Cookware"
        self.words = []  # (nouns, features, uses, variants)
        self.department = []  # department index per category
        self.materials = []  # per department
        self.brands = []  # per department
        self.siblings = []  # per department: its category indices
        for d, (department, (materials, categories)) in enumerate(DEPARTMENTS.items()):
            self.materials.append(split(materials))
            self.brands.append(brand_names(rng))
            self.siblings.append([])
            for name, words in categories.items():
                self.siblings[d].append(len(self.names))
                self.names.append(f"{department} > {name}")
                self.words.append(words)
                self.department.append(d)


def item_text(rng, catalogue, c):
    """One product's title, description, brand and price, in category `c`."""
    nouns, features, uses, variants = catalogue.words[c]
    d = catalogue.department[c]
    brand = rng.choice(catalogue.brands[d])
    noun = rng.choice(nouns)
    adjective = rng.choice(GENERIC_ADJECTIVES)
    material = rng.choice(catalogue.materials[d])
    colour = rng.choice(COLOURS)
    variant = rng.choice(variants)
    # Titles vary in shape the way marketplace titles do; some carry a model code.
    shape = rng.random()
    if shape < 0.4:
        title = f"{brand} {adjective} {material.title()} {noun.title()}, {variant}"
    elif shape < 0.7:
        title = f"{brand} {noun.title()} - {colour}, {variant}"
    else:
        title = f"{adjective} {noun.title()} by {brand} ({colour})"
    if rng.random() < 0.3:
        title += f" {brand[:2].upper()}-{rng.randrange(100, 9999)}"
    first, second = rng.sample(features, 2)
    sentences = []
    for template in rng.sample(SENTENCES, 2):
        sentences.append(template.format(
            adj=adjective.lower(), noun=noun, use=rng.choice(uses), feature=first,
            material=material, brand=brand))
        first = second
    sentences.append(f"Available in {colour.lower()}.")
    if rng.random() < 0.5:
        sentences.append(f"Part of our {catalogue.names[c].split(' > ')[1]} range.")
    if rng.random() < 0.6:
        sentences.append(rng.choice(CLOSINGS))
    description = " ".join(s[0].upper() + s[1:] for s in sentences)
    # Log-normal prices around a department-independent median of ~25.
    price = round(math.exp(rng.gauss(3.2, 0.9)), 2)
    return title, description, brand, price


def zipf_weights(n, exponent, rng):
    """Popularity weight of each of n things: 1/(rank + offset)^exponent over a random ranking."""
    ranks = list(range(n))
    rng.shuffle(ranks)
    return array("d", (1.0 / (rank + 1 + POPULARITY_OFFSET) ** exponent for rank in ranks))


def user_event_counts(rng, users, interactions):
    """Views per user: MIN_EVENTS plus a heavy-tailed extra (Pareto, alpha 1.5, scaled to the mean the
    totals need), adjusted to sum to exactly `interactions`."""
    mean_extra = interactions / users - MIN_EVENTS
    alpha = 1.5
    # paretovariate(alpha) - 1 has mean 1/(alpha - 1): scaled by (alpha - 1) its mean is 1.
    counts = array("I", (min(MAX_EVENTS_PER_USER,
                             MIN_EVENTS + int(mean_extra * (alpha - 1) * (rng.paretovariate(alpha) - 1)))
                         for _ in range(users)))
    # Rounding and the cap miss the target by a few percent: nudge random users until it is exact.
    missing = interactions - sum(counts)
    while missing != 0:
        u = rng.randrange(users)
        if missing > 0 and counts[u] < MAX_EVENTS_PER_USER:
            step = min(missing, MAX_EVENTS_PER_USER - counts[u], 1 + missing // users)
            counts[u] += step
            missing -= step
        elif missing < 0 and counts[u] > MIN_EVENTS:
            step = min(-missing, counts[u] - MIN_EVENTS, 1 + (-missing) // users)
            counts[u] -= step
            missing += step
    return counts


def geometric(rng, rate):
    """1 + a geometric number of extra steps: floor of an exponential draw is geometric."""
    return 1 + int(rng.expovariate(rate)) if rate != math.inf else 1


class Sampler:
    """Draws categories and, inside a category, items by popularity (cumulative weights + bisect)."""

    def __init__(self, rng, item_category, item_weight, n_categories):
        self.rng = rng
        members = [array("I") for _ in range(n_categories)]
        for i, c in enumerate(item_category):
            members[c].append(i)
        self.members = members
        self.cum = [array("d", accumulate(item_weight[i] for i in m)) for m in members]
        # A category's pull is its items' total popularity, so overall item views follow item_weight.
        self.category_weight = [cum[-1] if cum else 0.0 for cum in self.cum]
        self.category_cum = array("d", accumulate(self.category_weight))

    def category(self):
        return bisect_right(self.category_cum, self.rng.random() * self.category_cum[-1])

    def items(self, c, k):
        cum = self.cum[c]
        total = cum[-1]
        members = self.members[c]
        rng = self.rng
        # bisect_right can return len(cum) only for a draw equal to the total, which random() < 1 avoids.
        return [members[bisect_right(cum, rng.random() * total)] for _ in range(k)]


def user_sequence(rng, sampler, siblings_of, favourites, count, session_rate):
    """`count` (item, is-first-of-session) pairs: sessions made of runs of views in one category."""
    fav_cum = list(accumulate(sampler.category_weight[c] for c in favourites))
    run_rate = -math.log(1 - P_LEAVE_CATEGORY)  # P(another view in the category) = 1 - P_LEAVE

    def fresh_category():
        if rng.random() < P_EXPLORE:
            return sampler.category()
        return favourites[bisect_right(fav_cum, rng.random() * fav_cum[-1])]

    out = []
    while len(out) < count:
        session = min(count - len(out), geometric(rng, session_rate))
        c = fresh_category()
        first = True
        while session > 0:
            run = min(session, geometric(rng, run_rate))
            for item in sampler.items(c, run):
                out.append((item, first))
                first = False
            session -= run
            if rng.random() < P_SIBLING:
                siblings = siblings_of[c]
                c = siblings[rng.randrange(len(siblings))]
            else:
                c = fresh_category()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="dataset folder to write (created; existing files replaced)")
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, help="default: interactions / 10")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--zipf", type=float, default=1.0, help="popularity exponent (default 1.0)")
    parser.add_argument("--session-mean", type=float, default=5.0, help="mean views per session")
    args = parser.parse_args()
    users = args.users or max(1, args.interactions // 10)
    if args.items < 1 or users < 1:
        sys.exit("--items and --users must be positive")
    if args.interactions < users * MIN_EVENTS:
        sys.exit(f"--interactions must be at least {MIN_EVENTS} x --users ({users * MIN_EVENTS})")
    if args.session_mean < 1:
        sys.exit("--session-mean must be at least 1")
    # A session is 1 + Geometric views with mean --session-mean: floor(Exp(rate)) has mean
    # 1/(e^rate - 1), which is session_mean - 1 for this rate (a session of exactly one view when 1).
    session_rate = math.log(1 + 1 / (args.session_mean - 1)) if args.session_mean > 1 else math.inf
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    # Separate streams per purpose, so changing e.g. the user count leaves the catalogue unchanged.
    catalogue = Catalogue(random.Random(f"{args.seed}/brands"))
    n_categories = len(catalogue.names)
    text_rng = random.Random(f"{args.seed}/items")
    # Category sizes are uneven (a shop has more T-shirts than cot bumpers): a mild power law.
    size_weights = zipf_weights(n_categories, 0.7, random.Random(f"{args.seed}/category-sizes"))
    size_cum = array("d", accumulate(size_weights))
    item_category = array("H")
    width = len(str(args.items))
    items_path = args.out / "items.jsonl"
    with open(items_path.with_suffix(".jsonl.tmp"), "w", encoding="utf-8", newline="\n") as f:
        for i in range(args.items):
            c = bisect_right(size_cum, text_rng.random() * size_cum[-1])
            item_category.append(c)
            title, description, brand, price = item_text(text_rng, catalogue, c)
            f.write(json.dumps({
                "item_id": f"SKU-{i:0{width}d}", "title": title, "description": description, "image": None,
                "category": catalogue.names[c], "brand": brand, "price": price,
            }, ensure_ascii=False))
            f.write("\n")
    items_path.with_suffix(".jsonl.tmp").replace(items_path)
    items_done = time.monotonic()
    print(f"items.jsonl        {args.items} items, {n_categories} categories "
          f"({items_done - started:.1f} s)", file=sys.stderr)

    rng = random.Random(f"{args.seed}/interactions")
    sampler = Sampler(rng, item_category, zipf_weights(args.items, args.zipf, rng), n_categories)
    siblings_of = [catalogue.siblings[catalogue.department[c]] for c in range(n_categories)]
    counts = user_event_counts(rng, users, args.interactions)
    user_width = len(str(users))
    inter_path = args.out / "interactions.csv"
    with open(inter_path.with_suffix(".csv.tmp"), "w", encoding="utf-8", newline="\n") as f:
        f.write("user_id,item_id,timestamp\n")
        for u in range(users):
            favourites = sorted({sampler.category() for _ in range(1 + min(3, int(rng.expovariate(1.0))))})
            t = LOG_START + rng.randrange(START_SPREAD_S)
            sessions = counts[u] / args.session_mean + 1
            session_gap = min(SESSION_GAP_MEAN_S, (LOG_START + LOG_SPAN_S - t) / sessions)
            user = f"u{u:0{user_width}d}"
            lines = []
            for item, session_start in user_sequence(rng, sampler, siblings_of, favourites, counts[u], session_rate):
                if session_start:
                    t += SESSION_GAP_MIN_S + int(rng.expovariate(1.0 / session_gap))
                else:
                    t += VIEW_GAP_MIN_S + int(rng.expovariate(1.0 / VIEW_GAP_MEAN_S))
                lines.append(f"{user},SKU-{item:0{width}d},{t}\n")
            f.writelines(lines)
            if (u + 1) % 100_000 == 0:
                print(f"  {u + 1} / {users} users", file=sys.stderr)
    inter_path.with_suffix(".csv.tmp").replace(inter_path)
    done = time.monotonic()
    print(f"interactions.csv   {args.interactions} interactions, {users} users "
          f"({done - items_done:.1f} s)", file=sys.stderr)

    (args.out / "README.md").write_text(
        "# Synthetic shop (scripts/make-scale-dataset.py)\n\n"
        f"`python3 scripts/make-scale-dataset.py {args.out.name} --items {args.items} "
        f"--interactions {args.interactions} --users {users} --seed {args.seed} --zipf {args.zipf} "
        f"--session-mean {args.session_mean}`\n\n"
        "Generated: no real shop, products or shoppers. Text only (no images).\n", encoding="utf-8")
    print(f"done               {args.out} ({done - started:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
