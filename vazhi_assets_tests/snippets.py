"""Real Urdu, Tamil and English snippets (UDHR articles, Thirukkural commentary) for tests."""

UR_ART3 = "ہر شخص کو اپنی جان، آزادی اور ذاتی تحفّظ کا حق ہے۔"
UR_ART26 = (
    "ہر شخص کو تعلیم کا حق ہے۔ تعلیم مفت ہو گی، کم سے کم ابتدائی اور بنیادی درجوں میں۔ "
    "ابتدائی تعلیم جبری ہو گی۔"
)
TA_KURAL1 = (
    "எழுத்துக்கள் எல்லாம் அகரத்தை அடிப்படையாக கொண்டிருக்கின்றன. அதுபோல உலகம் கடவுளை "
    "அடிப்படையாக கொண்டிருக்கிறது."
)
TA_KURAL391 = (
    "கல்வி கற்க நல்ல நூல்களைக் குற்றமறக் கற்க வேண்டும், அவ்வாறு கற்ற பிறகு, கற்ற "
    "கல்விக்கு தக்கவாறு நெறியில் நிற்க வேண்டும்."
)
EN_ART1 = (
    "All human beings are born free and equal in dignity and rights. They are endowed with "
    "reason and conscience and should act towards one another in a spirit of brotherhood."
)
