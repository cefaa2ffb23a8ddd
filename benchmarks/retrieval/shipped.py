"""The small real captioned set the project ships: 22 videos, each captioned in 6 languages.

21 clips are slow pans over the CC0 photos of ``skimage.data`` (made on the fly, a few KB
each); the 22nd is the real 60 s concert video of ``iscc-samples``. The captions were written
for this benchmark, phrased like video captions and not like the demo's queries
(``samples.footage.QUERIES``) that the lite space was tuned on. Only code and a generated
JSONL manifest exist; no media is committed.

Caveat: the tiny v-Sonar of ``examples/align-tiny.yaml`` is trained on crops of these same
photos, so its numbers here are not zero-shot.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.retrieval.datasets import write_manifest

LANGUAGES = ("eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn", "zho_Hans", "hin_Deva")

#: video -> captions in LANGUAGES order
CAPTIONS: dict[str, tuple[str, ...]] = {
    "astronaut": ("a smiling astronaut in a white suit poses in front of a flag",
                  "une astronaute souriante en combinaison blanche pose devant un drapeau",
                  "eine lächelnde Astronautin im weißen Anzug posiert vor einer Flagge",
                  "una astronauta sonriente con traje blanco posa delante de una bandera",
                  "一位穿白色宇航服的宇航员在旗帜前微笑",
                  "सफ़ेद सूट में एक मुस्कुराती अंतरिक्ष यात्री झंडे के सामने खड़ी है"),
    "brick": ("the camera slides along an old brick wall",
              "la caméra glisse le long d'un vieux mur de briques",
              "die Kamera gleitet an einer alten Backsteinmauer entlang",
              "la cámara recorre una vieja pared de ladrillo",
              "镜头沿着一面旧砖墙移动",
              "कैमरा एक पुरानी ईंट की दीवार के साथ चलता है"),
    "camera": ("a photographer stands behind a camera on a tripod in a field",
               "un photographe se tient derrière un appareil sur trépied dans un champ",
               "ein Fotograf steht auf einer Wiese hinter einer Kamera auf einem Stativ",
               "un fotógrafo está detrás de una cámara con trípode en un campo",
               "一名摄影师站在田野里的三脚架相机后面",
               "एक फ़ोटोग्राफ़र मैदान में तिपाई पर रखे कैमरे के पीछे खड़ा है"),
    "cell": ("a grey microscope image of a single cell",
             "une image de microscope en gris d'une seule cellule",
             "ein graues Mikroskopbild einer einzelnen Zelle",
             "una imagen gris de microscopio de una sola célula",
             "显微镜下单个细胞的灰色图像",
             "सूक्ष्मदर्शी से ली गई एक अकेली कोशिका की धूसर छवि"),
    "chelsea": ("a striped cat stares straight into the lens",
                "un chat tigré fixe l'objectif",
                "eine getigerte Katze starrt direkt ins Objektiv",
                "un gato rayado mira fijamente a la cámara",
                "一只虎斑猫直视镜头",
                "एक धारीदार बिल्ली सीधे कैमरे में देखती है"),
    "clock": ("a round clock with black hands hangs on a wall",
              "une pendule ronde aux aiguilles noires est accrochée au mur",
              "eine runde Uhr mit schwarzen Zeigern hängt an der Wand",
              "un reloj redondo con agujas negras cuelga de la pared",
              "墙上挂着一个黑色指针的圆形时钟",
              "दीवार पर काली सुइयों वाली एक गोल घड़ी टंगी है"),
    "coffee": ("a white cup of coffee on a saucer, seen from above",
               "une tasse de café blanche sur une soucoupe, vue de dessus",
               "eine weiße Kaffeetasse auf einer Untertasse, von oben gesehen",
               "una taza blanca de café sobre un platillo, vista desde arriba",
               "从上方看到的碟子上的一杯白色咖啡杯",
               "तश्तरी पर रखा कॉफ़ी का सफ़ेद कप, ऊपर से देखा गया"),
    "coins": ("rows of old metal coins laid out on a table",
              "des rangées de vieilles pièces de monnaie posées sur une table",
              "Reihen alter Metallmünzen liegen auf einem Tisch",
              "filas de monedas antiguas de metal sobre una mesa",
              "桌上摆着一排排旧金属硬币",
              "मेज़ पर रखे पुराने धातु के सिक्कों की कतारें"),
    "colorwheel": ("a disc showing every colour of the rainbow",
                   "un disque montrant toutes les couleurs de l'arc-en-ciel",
                   "eine Scheibe mit allen Farben des Regenbogens",
                   "un disco con todos los colores del arcoíris",
                   "一个显示彩虹所有颜色的圆盘",
                   "इंद्रधनुष के सभी रंग दिखाती एक चकती"),
    "grass": ("close-up of green blades of grass",
              "gros plan sur des brins d'herbe verts",
              "Nahaufnahme grüner Grashalme",
              "primer plano de briznas de hierba verde",
              "绿色草叶的特写",
              "हरी घास की पत्तियों का नज़दीकी दृश्य"),
    "gravel": ("small grey stones covering the ground",
               "de petits cailloux gris recouvrent le sol",
               "kleine graue Steine bedecken den Boden",
               "piedras pequeñas y grises cubren el suelo",
               "地上铺满了灰色的小石子",
               "ज़मीन पर बिछे छोटे धूसर पत्थर"),
    "horse": ("the black silhouette of a horse on a white background",
              "la silhouette noire d'un cheval sur fond blanc",
              "die schwarze Silhouette eines Pferdes auf weißem Hintergrund",
              "la silueta negra de un caballo sobre fondo blanco",
              "白色背景上的黑色马的剪影",
              "सफ़ेद पृष्ठभूमि पर एक घोड़े की काली आकृति"),
    "hubble_deep_field": ("a telescope view of many distant galaxies in black space",
                          "une vue au télescope de nombreuses galaxies lointaines dans l'espace noir",
                          "ein Teleskopbild vieler ferner Galaxien im schwarzen All",
                          "una vista de telescopio de muchas galaxias lejanas en el espacio negro",
                          "望远镜拍下的黑色太空中许多遥远的星系",
                          "काले अंतरिक्ष में कई दूर की आकाशगंगाओं का दूरबीन से दृश्य"),
    "immunohistochemistry": ("tissue stained brown and blue under a microscope",
                             "un tissu coloré en brun et bleu au microscope",
                             "braun und blau gefärbtes Gewebe unter dem Mikroskop",
                             "tejido teñido de marrón y azul bajo el microscopio",
                             "显微镜下染成棕色和蓝色的组织",
                             "सूक्ष्मदर्शी के नीचे भूरे और नीले रंग में रंगा ऊतक"),
    "logo": ("a colourful software logo with a snake and a microscope",
             "un logo de logiciel coloré avec un serpent et un microscope",
             "ein buntes Software-Logo mit einer Schlange und einem Mikroskop",
             "un logotipo de software colorido con una serpiente y un microscopio",
             "一个带有蛇和显微镜的彩色软件标志",
             "साँप और सूक्ष्मदर्शी वाला एक रंगीन सॉफ़्टवेयर लोगो"),
    "moon": ("craters on the grey surface of the moon",
             "des cratères à la surface grise de la lune",
             "Krater auf der grauen Oberfläche des Mondes",
             "cráteres en la superficie gris de la luna",
             "月球灰色表面上的陨石坑",
             "चाँद की धूसर सतह पर गड्ढे"),
    "motorcycle": ("a red motorbike parked in a garage",
                   "une moto rouge garée dans un garage",
                   "ein rotes Motorrad steht in einer Garage",
                   "una moto roja aparcada en un garaje",
                   "一辆停在车库里的红色摩托车",
                   "गैराज में खड़ी एक लाल मोटरबाइक"),
    "page": ("the camera pans over a scanned page of a printed book",
             "la caméra parcourt une page imprimée d'un livre numérisé",
             "die Kamera schwenkt über eine gescannte, gedruckte Buchseite",
             "la cámara recorre una página impresa escaneada de un libro",
             "镜头扫过一页扫描的印刷书页",
             "कैमरा किताब के एक स्कैन किए गए छपे पन्ने पर घूमता है"),
    "retina": ("an orange photo of the back of an eye with blood vessels",
               "une photo orange du fond de l'œil avec ses vaisseaux sanguins",
               "ein orangefarbenes Foto des Augenhintergrunds mit Blutgefäßen",
               "una foto naranja del fondo del ojo con vasos sanguíneos",
               "一张带血管的眼底橙色照片",
               "रक्त वाहिकाओं के साथ आँख के पिछले हिस्से की एक नारंगी तस्वीर"),
    "rocket": ("a space rocket stands next to its tower, ready for launch",
               "une fusée se dresse à côté de sa tour, prête au lancement",
               "eine Weltraumrakete steht startbereit neben ihrem Turm",
               "un cohete espacial junto a su torre, listo para el lanzamiento",
               "一枚航天火箭矗立在发射塔旁，准备发射",
               "एक अंतरिक्ष रॉकेट अपने टावर के पास प्रक्षेपण के लिए तैयार खड़ा है"),
    "text": ("a line of handwritten words in black ink",
             "une ligne de mots écrits à la main à l'encre noire",
             "eine Zeile handgeschriebener Wörter in schwarzer Tinte",
             "una línea de palabras escritas a mano con tinta negra",
             "一行用黑色墨水手写的文字",
             "काली स्याही में हाथ से लिखे शब्दों की एक पंक्ति"),
    "concert": ("a rock band plays guitars and drums on a dark stage",
                "un groupe de rock joue de la guitare et de la batterie sur une scène sombre",
                "eine Rockband spielt Gitarre und Schlagzeug auf einer dunklen Bühne",
                "una banda de rock toca guitarras y batería en un escenario oscuro",
                "一支摇滚乐队在昏暗的舞台上弹吉他、打鼓",
                "एक रॉक बैंड अँधेरे मंच पर गिटार और ड्रम बजा रहा है"),
}


def build_shipped_set(folder: str | Path, seconds: float = 4.0, fps: int = 12) -> Path:
    """Write the clips and ``manifest.jsonl`` into ``folder`` (clips already there are reused)."""
    from samples.captions import photo
    from samples.footage import concert_video, pan_frames, write_video
    folder = Path(folder)
    rows = []
    for name, captions in CAPTIONS.items():
        path = folder / ("concert.mp4" if name == "concert" else f"clips/{name}.mp4")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            if name == "concert":
                shutil.copyfile(concert_video(), path)
            else:
                write_video(path, pan_frames(photo(name), seconds, fps, (320, 240)), fps)
        rows += [{"video": str(path.relative_to(folder)), "caption": text, "language": lang}
                 for lang, text in zip(LANGUAGES, captions, strict=True)]
    return write_manifest(folder / "manifest.jsonl", rows)
