"""Built-in place names, as features for the entity tagger: countries (and their common
short names), US states and territories, and the states' postal codes.

Commercial NLU services ship such built-in entities (geographic names, dates, numbers); a bot
that labels ten sentences cannot teach its tagger that "Wisconsin" is a state and "Dominica" a
country. A token n-gram equal to a name marks its tokens ``pl:B-country`` / ``pl:I-state``...
(``jobplane.inference.token_features``); the tagger learns from the bot's own examples which of
its entity types, if any, these features point to. A model trained before these features
existed has none of them in its vocabulary and tags as before.
"""

from __future__ import annotations

from typing import Final

COUNTRIES: Final = frozenset({
    'afghanistan', 'albania', 'algeria', 'america', 'american samoa', 'andorra', 'angola', 'anguilla',
    'antigua and barbuda', 'argentina', 'armenia', 'aruba', 'australia', 'austria', 'azerbaijan', 'bahamas',
    'bahrain', 'bangladesh', 'barbados', 'belarus', 'belgium', 'belize', 'benin', 'bermuda', 'bhutan', 'bolivia',
    'bosnia', 'bosnia and herzegovina', 'botswana', 'brazil', 'britain', 'british virgin islands', 'brunei',
    'bulgaria', 'burkina faso', 'burma', 'burundi', 'cabo verde', 'cambodia', 'cameroon', 'canada', 'cape verde',
    'cayman islands', 'central african republic', 'chad', 'chile', 'china', 'colombia', 'comoros', 'congo',
    'costa rica', "cote d'ivoire", 'croatia', 'cuba', 'curacao', 'cyprus', 'czech republic', 'czechia',
    'democratic republic of the congo', 'denmark', 'djibouti', 'dominica', 'dominican republic', 'east timor',
    'ecuador', 'egypt', 'el salvador', 'england', 'equatorial guinea', 'eritrea', 'estonia', 'eswatini', 'ethiopia',
    'falkland islands', 'faroe islands', 'fiji', 'finland', 'france', 'french guiana', 'french polynesia', 'gabon',
    'gambia', 'georgia', 'germany', 'ghana', 'gibraltar', 'great britain', 'greece', 'greenland', 'grenada',
    'guadeloupe', 'guam', 'guatemala', 'guernsey', 'guinea', 'guinea-bissau', 'guyana', 'haiti', 'herzegovina',
    'holland', 'honduras', 'hong kong', 'hungary', 'iceland', 'india', 'indonesia', 'iran', 'iraq', 'ireland',
    'isle of man', 'israel', 'italy', 'ivory coast', 'jamaica', 'japan', 'jersey', 'jordan', 'kazakhstan', 'kenya',
    'kiribati', 'korea', 'kosovo', 'kuwait', 'kyrgyzstan', 'laos', 'latvia', 'lebanon', 'lesotho', 'liberia', 'libya',
    'liechtenstein', 'lithuania', 'luxembourg', 'macau', 'macedonia', 'madagascar', 'malawi', 'malaysia', 'maldives',
    'mali', 'malta', 'marshall islands', 'martinique', 'mauritania', 'mauritius', 'mayotte', 'mexico', 'micronesia',
    'moldova', 'monaco', 'mongolia', 'montenegro', 'montserrat', 'morocco', 'mozambique', 'myanmar', 'namibia',
    'nauru', 'nepal', 'netherlands', 'new caledonia', 'new zealand', 'nicaragua', 'niger', 'nigeria', 'north korea',
    'north macedonia', 'northern ireland', 'northern mariana islands', 'norway', 'oman', 'pakistan', 'palau',
    'palestine', 'panama', 'papua new guinea', 'paraguay', 'peru', 'philippines', 'poland', 'portugal', 'puerto rico',
    'qatar', 'republic of the congo', 'reunion', 'romania', 'russia', 'russian federation', 'rwanda',
    'saint kitts and nevis', 'saint lucia', 'saint vincent and the grenadines', 'samoa', 'san marino',
    'sao tome and principe', 'saudi arabia', 'scotland', 'senegal', 'serbia', 'seychelles', 'sierra leone',
    'singapore', 'slovakia', 'slovenia', 'solomon islands', 'somalia', 'south africa', 'south korea', 'south sudan',
    'spain', 'sri lanka', 'sudan', 'suriname', 'swaziland', 'sweden', 'switzerland', 'syria', 'taiwan', 'tajikistan',
    'tanzania', 'thailand', 'the bahamas', 'the gambia', 'the netherlands', 'the philippines', 'timor-leste', 'togo',
    'tonga', 'trinidad and tobago', 'tunisia', 'turkey', 'turkmenistan', 'tuvalu', 'u.s. virgin islands', 'uae',
    'uganda', 'uk', 'ukraine', 'united arab emirates', 'united kingdom', 'united states', 'united states of america',
    'uruguay', 'us virgin islands', 'usa', 'uzbekistan', 'vanuatu', 'vatican city', 'venezuela', 'vietnam',
    'virgin islands', 'wales', 'western sahara', 'yemen', 'zambia', 'zimbabwe',
})
"""Countries and territories, lowercase."""

US_STATES: Final = frozenset({
    'alabama', 'alaska', 'american samoa', 'arizona', 'arkansas', 'california', 'colorado', 'connecticut', 'delaware',
    'district of columbia', 'florida', 'georgia', 'guam', 'hawaii', 'idaho', 'illinois', 'indiana', 'iowa', 'kansas',
    'kentucky', 'louisiana', 'maine', 'maryland', 'massachusetts', 'michigan', 'minnesota', 'mississippi', 'missouri',
    'montana', 'nebraska', 'nevada', 'new hampshire', 'new jersey', 'new mexico', 'new york', 'north carolina',
    'north dakota', 'northern mariana islands', 'ohio', 'oklahoma', 'oregon', 'pennsylvania', 'puerto rico',
    'rhode island', 'south carolina', 'south dakota', 'tennessee', 'texas', 'u.s. virgin islands', 'utah', 'vermont',
    'virginia', 'washington', 'west virginia', 'wisconsin', 'wyoming',
})
"""US states, the District of Columbia and the territories, lowercase."""

STATE_CODES: Final = frozenset({
    'AK', 'AL', 'AR', 'AS', 'AZ', 'CA', 'CO', 'CT', 'DC', 'DE', 'FL', 'GA', 'GU', 'HI', 'IA', 'ID', 'IL', 'IN', 'KS',
    'KY', 'LA', 'MA', 'MD', 'ME', 'MI', 'MN', 'MO', 'MP', 'MS', 'MT', 'NC', 'ND', 'NE', 'NH', 'NJ', 'NM', 'NV', 'NY',
    'OH', 'OK', 'OR', 'PA', 'PR', 'RI', 'SC', 'SD', 'TN', 'TX', 'UT', 'VA', 'VI', 'VT', 'WA', 'WI', 'WV', 'WY',
})
"""Their two-letter postal codes: matched only in capitals ("IN", not "in")."""
