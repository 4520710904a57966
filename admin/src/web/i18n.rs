//! The words of the console's pages in Kazakh, Russian and English (domain.md section 2
//! for the domain's words). One table: a key and its three translations. A key missing
//! from the table shows as `⟦key⟧`, which the page tests look for in every language.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Kk,
    Ru,
    En,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Kk, Lang::Ru, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Kk => "kk",
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// The name of the language in itself, for the switch.
    pub fn label(self) -> &'static str {
        match self {
            Lang::Kk => "Қазақша",
            Lang::Ru => "Русский",
            Lang::En => "English",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kk" | "kz" => Some(Lang::Kk),
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// (key, Kazakh, Russian, English).
pub static WORDS: &[(&str, &str, &str, &str)] = &[
    // Chrome.
    ("brand_sub", "мектепке дейінгі ұйымдарға кезек", "очередь в дошкольные организации", "preschool enrollment queue"),
    ("nav_overview", "Шолу", "Обзор", "Overview"),
    ("nav_applications", "Өтініштер", "Заявления", "Applications"),
    ("nav_kindergartens", "Балабақшалар", "Детские сады", "Kindergartens"),
    ("nav_rules", "Ережелер", "Правила", "Rules"),
    ("nav_console", "Консоль", "Консоль", "Console"),
    ("nav_audit", "Аудит журналы", "Журнал аудита", "Audit log"),
    ("nav_public", "Ашық ақпарат", "Открытые данные", "Public page"),
    ("logout", "Шығу", "Выйти", "Sign out"),
    ("footer", "Kezek · уақыт Алматы бойынша көрсетілген", "Kezek · время указано по Алматы", "Kezek · times are Almaty time"),
    ("role_viewer", "қарап шығушы", "наблюдатель", "viewer"),
    ("role_operator", "оператор", "оператор", "operator"),
    ("role_rules_admin", "ереже әкімшісі", "администратор правил", "rules administrator"),
    ("lang_kk", "қазақ тілі", "казахский", "Kazakh"),
    ("lang_ru", "орыс тілі", "русский", "Russian"),
    ("error", "Қате", "Ошибка", "Error"),
    ("back_home", "Басты бетке", "На главную", "Back to the overview"),
    ("err_too_large", "Сұрау тым үлкен", "Запрос слишком большой", "The request is over the size limit"),
    ("err_timeout", "Сұрау уақыт шегінен асты; сұралған өзгеріс орындалған болуы мүмкін", "Запрос превысил лимит времени; изменение могло быть выполнено", "The request took longer than the limit; a change it asked for may or may not have been made"),
    ("err_method", "Бұл бет мұндай сұрауды қабылдамайды", "Эта страница не принимает такой запрос", "This page does not take that method"),
    ("err_request", "Сұрау түсініксіз", "Запрос не понят", "The request was not understood"),
    ("no_such_page", "Мұндай бет жоқ", "Такой страницы нет", "No such page"),
    ("csrf_failed", "Форманың қорғаныс белгісі сәйкес келмейді: бетті жаңартып, қайталаңыз", "Токен защиты формы не совпадает: обновите страницу и повторите", "The form's security token does not match: reload the page and try again"),
    ("role_needed", "Бұл әрекетке рөл қажет:", "Для этого действия нужна роль:", "This action needs the role"),
    ("field_required", "толтырылуы керек", "обязательное поле", "required"),
    ("bad_value", "дұрыс емес мән", "неверное значение", "not a valid value"),
    ("bad_number", "дұрыс емес сан", "неверное число", "not a valid number"),
    ("bad_cohort", "туған жыл дұрыс емес", "неверный год рождения", "not a cohort (birth year)"),
    ("bad_version", "нұсқа нөмірі дұрыс емес", "неверный номер версии", "not a version number"),
    ("query_too_long", "Іздеу сұрауы тым ұзын", "Слишком длинный запрос", "The search is too long"),
    ("reason_too_long", "Себеп тым ұзын (1000 таңбаға дейін)", "Причина слишком длинная (до 1000 символов)", "The reason is too long (1000 characters at most)"),
    ("none", "жоқ", "нет", "none"),
    ("yes", "иә", "да", "yes"),
    ("no", "жоқ", "нет", "no"),
    ("all", "Барлығы", "Все", "All"),
    ("found", "табылды", "найдено", "found"),
    ("prev", "Алдыңғы", "Назад", "Previous"),
    ("next", "Келесі", "Далее", "Next"),
    ("confirm", "Растау", "Подтвердить", "Confirm"),
    ("cancel", "Болдырмау", "Отмена", "Cancel"),
    ("reason", "Себебі", "Причина", "Reason"),
    ("attention", "НАЗАР АУДАРЫҢЫЗ!", "ВНИМАНИЕ!", "ATTENTION!"),
    ("almaty_time", "Алматы уақыты", "время Алматы", "Almaty time"),
    ("search", "Іздеу", "Найти", "Search"),
    ("filter", "Сүзу", "Фильтр", "Filter"),
    ("time", "Уақыты", "Время", "Time"),
    ("days", "күн", "дн.", "days"),
    ("total", "Барлығы", "Всего", "Total"),
    // Login.
    ("login_title", "Консольге кіру", "Вход в консоль", "Sign in to the console"),
    ("username", "Пайдаланушы аты", "Имя пользователя", "User name"),
    ("password", "Құпиясөз", "Пароль", "Password"),
    ("login_button", "Кіру", "Войти", "Sign in"),
    ("login_failed", "Пайдаланушы аты немесе құпиясөз қате", "Неверное имя пользователя или пароль", "Wrong user name or password"),
    ("login_throttled", "Сәтсіз әрекеттер тым көп. Қайта көріңіз, секунд:", "Слишком много неудачных попыток. Повторите через, секунд:", "Too many failed attempts. Try again in seconds:"),
    ("login_hint", "Алғашқы іске қосқанда `kezek serve` admin құпиясөзін бір рет шығарады.", "При первом запуске `kezek serve` один раз печатает пароль admin.", "On its first start `kezek serve` prints the admin password once."),
    // Overview.
    ("today_referrals", "Бүгін берілген жолдамалар", "Направлений выдано сегодня", "Referrals issued today"),
    ("today_recalls", "Бүгін кері шақырылғандар", "Отзывов сегодня", "Recalls today"),
    ("today_expiries", "Бүгін мерзімі өткендер", "Истекло сегодня", "Expired today"),
    ("waiting_total", "Кезекте барлығы", "Всего в очереди", "Waiting in all queues"),
    ("open_publications", "Ашық жарияланымдар", "Открытые публикации", "Open publications"),
    ("now_is", "Қазір", "Сейчас", "Now"),
    ("chart_title", "Кезек көлемі мен орналастыру", "Размер очереди и распределение", "Queue size and placements"),
    ("chart_queue", "кезектегі балалар", "детей в очереди", "children waiting"),
    ("chart_placements", "күніне берілген жолдамалар", "направлений в день", "referrals issued per day"),
    ("queue_by_cohort", "Туған жыл және жеңілдік түрі бойынша кезек", "Очередь по году рождения и категории льготы", "Queue by cohort and benefit category"),
    ("cohort", "Туған жыл", "Год рождения", "Cohort"),
    ("kindergarten", "Балабақша (ДДО)", "Детский сад (ДОО)", "Kindergarten"),
    ("language", "Оқыту тілі", "Язык обучения", "Language"),
    ("places", "Орындар", "Места", "Places"),
    ("places_left", "Бос қалғаны", "Осталось", "Places left"),
    ("phase", "Кезең", "Этап", "Phase"),
    ("phase_ends", "Кезең аяқталады", "Этап заканчивается", "Phase ends"),
    ("priority", "кезектегі біріншілерге", "первым в очереди", "priority"),
    ("free_access", "еркін қол жеткізу", "свободный доступ", "free access"),
    // Applications.
    ("search_placeholder", "Өтініш нөмірі немесе ЖСН", "Номер заявления или ИИН", "Application number or IIN"),
    ("search_help", "Өтініш нөмірі (UO.2018.489862.1 немесе оның бөлігі), баланың немесе өтініш берушінің ЖСН-і (12 сан).", "Номер заявления (UO.2018.489862.1 или его часть), ИИН ребёнка или заявителя (12 цифр).", "An application number (UO.2018.489862.1 or part of it), or the child's or applicant's IIN (12 digits)."),
    ("queue_of_cohort", "Кезек", "Очередь", "Queue"),
    ("results", "Нәтижелер", "Результаты", "Results"),
    ("nothing_found", "Ештеңе табылмады", "Ничего не найдено", "Nothing found"),
    ("active_referrals", "Берілген жолдамалар", "Выданные направления", "Referrals issued"),
    ("app_number", "Өтініш нөмірі", "Номер заявления", "Application number"),
    ("child", "Бала", "Ребёнок", "Child"),
    ("child_iin", "Баланың ЖСН", "ИИН ребёнка", "Child's IIN"),
    ("category", "Жеңілдік түрі", "Категория льготы", "Benefit category"),
    ("queue_position", "Кезек нөмірі", "Номер в очереди", "Queue number"),
    ("category_position", "Жеңілдікті категория бойынша кезек нөмірі", "Номер в очереди по льготной категории", "Queue number in the category"),
    ("status", "Мәртебесі", "Статус", "Status"),
    ("registered_at", "Тіркеу күні", "Дата регистрации", "Registered"),
    ("application", "Өтініш", "Заявление", "Application"),
    ("applicant", "Өтініш беруші", "Заявитель", "Applicant"),
    ("full_name", "Толық аты", "ФИО", "Full name"),
    ("iin", "ЖСН", "ИИН", "IIN"),
    ("birth_date", "Туған күні", "Дата рождения", "Birth date"),
    ("email", "E-mail", "Эл. почта", "E-mail"),
    ("phone", "Телефон", "Телефон", "Phone"),
    ("last_change", "Соңғы өзгерту күні мен уақыты", "Дата и время последнего изменения", "Last change"),
    ("referral", "Жолдама", "Направление", "Referral"),
    ("issued_at", "Берілген күні", "Дата выдачи", "Issued"),
    ("valid_until", "Жарамды мерзімі", "Действительно до", "Valid until"),
    ("recall_until", "Кері шақыру мерзімі", "Отозвать можно до", "Recall possible until"),
    ("extended", "Ұзартылды", "Продлено", "Extended"),
    ("lock", "Бұғаттау", "Блокировка", "Lock"),
    ("lock_note", "Кері шақырудан кейін: кезектегі біріншілерге арналған орындар еркін қол жеткізуге жарияланғанға дейін қол жетімсіз.", "После отзыва: места для первых в очереди недоступны до их публикации в свободный доступ.", "After a recall: places of a priority phase are closed to this child until they open to free access."),
    ("stop_list", "Тоқтату тізімі", "Стоп-лист", "Stop-list"),
    ("stop_list_note", "Жолдаманың мерзімі өткенде: кезектегі орны сақталады, бірақ ұсыныстар болмайды.", "После истечения направления: место в очереди сохраняется, но предложений нет.", "After an expired referral: the place in the queue is kept, but no offers."),
    ("tab_application", "Өтініш туралы ақпарат", "Сведения о заявлении", "Application"),
    ("tab_changes", "Өзгерістер туралы ақпарат", "История изменений", "Changes"),
    ("tab_explain", "Орынның түсіндірмесі", "Объяснение позиции", "Why this position"),
    ("event", "Оқиға", "Событие", "Event"),
    ("actor", "Кім", "Кто", "Actor"),
    ("from", "Бұрын", "Было", "From"),
    ("to", "Кейін", "Стало", "To"),
    ("why", "Себебі", "Почему", "Why"),
    ("nobody_ahead", "Алда ешкім жоқ.", "Впереди никого нет.", "Nobody is ahead."),
    ("ahead_by_category", "Алда тұрғандар, жеңілдік түрі бойынша", "Впереди по категориям льгот", "Ahead, by benefit category"),
    ("position_moves", "Кезек нөмірінің өзгерістері", "Изменения номера в очереди", "Changes of the position"),
    ("actions_need_operator", "Әрекеттер оператор рөлін қажет етеді.", "Действия доступны роли оператора.", "Actions need the operator role."),
    ("act_recall", "Жолдаманы кері шақыру", "Отозвать направление", "Recall the referral"),
    ("act_extend", "Жолдаманы ұзарту", "Продлить направление", "Extend the referral"),
    ("act_enroll", "Қабылданды деп белгілеу", "Отметить зачисление", "Enroll"),
    ("act_withdraw", "Өтінішті кері қайтару", "Отозвать заявление", "Withdraw the application"),
    ("act_cancel_benefit", "Жеңілдік расталмады", "Льгота не подтверждена", "Cancel the unconfirmed benefit"),
    ("extend_note", "Жолдама бір рет ұзартылады.", "Направление продлевается один раз.", "A referral is extended once."),
    ("enroll_note", "Жолдама пайдаланылды: бала балабақшаға қабылданды.", "Направление использовано: ребёнок зачислен.", "The referral was used: the child is enrolled."),
    ("withdraw_note", "Өтініш кезектен алынады.", "Заявление снимается с очереди.", "The application leaves the queue."),
    ("cancel_benefit_note", "Жолдама жойылады, өтініш бастапқы күнімен жалпы кезекке ауысады.", "Направление аннулируется, заявление переходит в общую очередь с исходной датой.", "Any referral is cancelled; the application moves to the general queue with its original date."),
    ("no_such_action", "Мұндай әрекет жоқ", "Такого действия нет", "No such action"),
    ("done_recall", "Жолдама кері шақырылды", "Направление отозвано", "Referral recalled"),
    ("done_extend", "Жолдама ұзартылды", "Направление продлено", "Referral extended"),
    ("done_enroll", "Қабылданды", "Зачислен", "Enrolled"),
    ("done_withdraw", "Өтініш кері қайтарылды", "Заявление отозвано", "Application withdrawn"),
    ("done_cancel_benefit", "Жеңілдік алынып тасталды", "Льгота снята", "Benefit cancelled"),
    ("ev_registered", "тіркелді", "зарегистрировано", "registered"),
    ("ev_category_changed", "жеңілдік түрі өзгерді", "категория изменена", "category changed"),
    ("ev_referral_issued", "жолдама берілді", "направление выдано", "referral issued"),
    ("ev_referral_extended", "жолдама ұзартылды", "направление продлено", "referral extended"),
    ("ev_referral_recalled", "жолдама кері шақырылды", "направление отозвано", "referral recalled"),
    ("ev_lock_applied", "бұғатталды", "блокировка", "lock applied"),
    ("ev_lock_lifted", "бұғат алынды", "блокировка снята", "lock lifted"),
    ("ev_referral_expired", "жолдама мерзімі өтті", "направление истекло", "referral expired"),
    ("ev_stop_list_lifted", "тоқтату тізімінен шықты", "снят со стоп-листа", "stop-list lifted"),
    ("ev_benefit_cancelled", "жеңілдік расталмады", "льгота не подтверждена", "benefit cancelled"),
    ("ev_enrolled", "қабылданды", "зачислен", "enrolled"),
    ("ev_withdrawn", "кері қайтарылды", "отозвано", "withdrawn"),
    ("ev_rules_activated", "ережелер іске қосылды", "правила введены", "rules activated"),
    ("ev_places_published", "орындар жарияланды", "места опубликованы", "places published"),
    ("ev_priority_phase_ended", "басым кезең аяқталды", "приоритетный этап завершён", "priority phase ended"),
    ("ev_groups_added", "топтар қосылды", "группы добавлены", "groups added"),
    // Kindergartens.
    ("kg_search_placeholder", "Атауы, ID немесе аудан", "Название, ID или район", "Name, ID or district"),
    ("publications", "Жарияланымдар", "Публикации", "Publications"),
    ("name", "Атауы", "Название", "Name"),
    ("district", "Аудан", "Район", "District"),
    ("groups", "Топтар", "Группы", "Groups"),
    ("group", "Топ", "Группа", "Group"),
    ("capacity", "Сыйымдылығы", "Вместимость", "Capacity"),
    ("published", "Жарияланған", "Опубликовано", "Published"),
    ("publishable", "Жариялауға болады", "Можно опубликовать", "Publishable"),
    ("waiting", "Кезекте", "В очереди", "Waiting"),
    ("publish_places", "Бос орындарды жариялау", "Опубликовать свободные места", "Publish free places"),
    ("publish", "Жариялау", "Опубликовать", "Publish"),
    ("publish_note", "Жариялау кезектегі біріншілерге арналған кезеңді бастайды; одан кейін қалған орындар еркін қол жеткізуге ашылады.", "Публикация начинает этап для первых в очереди; затем оставшиеся места открываются в свободный доступ.", "Publishing starts the priority phase; the places left then open to free access."),
    ("publish_needs_operator", "Жариялау оператор рөлін қажет етеді.", "Публикация доступна роли оператора.", "Publishing needs the operator role."),
    ("no_such_kindergarten", "Мұндай балабақша жоқ", "Такого детского сада нет", "No such kindergarten"),
    ("done_publish", "Орындар жарияланды", "Места опубликованы", "Places published"),
    ("published_at", "Жарияланды", "Опубликовано", "Published at"),
    ("free_access_at", "Еркін қол жеткізу", "Свободный доступ с", "Free access at"),
    // Rules.
    ("no_rules", "Белсенді ережелер жоқ", "Нет действующих правил", "No rule set is active"),
    ("active_version", "Белсенді нұсқа", "Действующая версия", "Active version"),
    ("active", "белсенді", "действует", "active"),
    ("version", "Нұсқа", "Версия", "Version"),
    ("hash", "Хэш", "Хэш", "Hash"),
    ("activated_at", "Іске қосылды", "Введена", "Activated"),
    ("files", "Файлдар", "Файлы", "Files"),
    ("edit_draft", "Жобаны өңдеу", "Редактировать черновик", "Edit a draft"),
    ("parameters", "Параметрлер", "Параметры", "Parameters"),
    ("rank", "Реті", "Ранг", "Rank"),
    ("p_recall_window_hours", "Кері шақыру мерзімі, сағат", "Срок отзыва, часов", "Recall window, hours"),
    ("p_referral_validity", "Жолдаманың жарамдылығы, жұмыс күні", "Срок направления, рабочих дней", "Referral validity, working days"),
    ("p_extension_days", "Ұзарту, күн", "Продление, дней", "Extension, days"),
    ("p_max_extensions", "Ұзарту саны", "Число продлений", "Extensions allowed"),
    ("p_stop_list_days", "Тоқтату тізімі, күн", "Стоп-лист, дней", "Stop-list, days"),
    ("p_priority_days", "Басым кезең, жұмыс күні", "Приоритетный этап, рабочих дней", "Priority phase, working days"),
    ("p_free_access_time", "Еркін қол жеткізу уақыты", "Время свободного доступа", "Free access time"),
    ("p_holidays", "Мереке күндері", "Праздничных дней", "Holidays"),
    ("history", "Нұсқалар тарихы", "История версий", "Version history"),
    ("diff_prev", "алдыңғымен айырмасы", "отличия от предыдущей", "diff with previous"),
    ("edit_from", "осыдан жоба", "черновик из неё", "draft from it"),
    ("rollback_to", "Қайтару: нұсқа", "Откатить к версии", "Roll back to version"),
    ("rollback_note", "Осы нұсқаның файлдары жаңа нұсқа ретінде іске қосылады; барлық кезек қайта реттеледі.", "Файлы этой версии будут введены как новая версия; все очереди будут пересчитаны.", "This version's files are activated as a new version; every queue is re-ranked."),
    ("diff_from", "Нұсқадан", "Из версии", "From version"),
    ("diff_to", "Нұсқаға", "В версию", "To version"),
    ("show_diff", "Айырмасын көрсету", "Показать отличия", "Show the diff"),
    ("rules_diff", "Нұсқалар айырмасы", "Отличия версий", "Rule versions compared"),
    ("no_such_version", "Мұндай нұсқа жоқ:", "Нет версии", "No rule version"),
    ("no_differences", "Айырма жоқ.", "Отличий нет.", "No differences."),
    ("added", "қосылды", "добавлен", "added"),
    ("removed", "жойылды", "удалён", "removed"),
    ("draft_title", "Ережелер жобасы", "Черновик правил", "Rules draft"),
    ("draft_from", "Жоба негізі: нұсқа", "Черновик на основе версии", "Draft based on version"),
    ("draft_note", "Жоба тек осы бетте; іске қосылмайынша ештеңе өзгермейді.", "Черновик живёт на этой странице; ничего не меняется до введения.", "The draft lives in this page; nothing changes until it is activated."),
    ("check", "Тексеру", "Проверить", "Check"),
    ("impact", "Әсері", "Влияние", "Impact"),
    ("impact_search", "Өтініш нөмірі бойынша сүзу", "Фильтр по номеру заявления", "Filter by application number"),
    ("activate", "Іске қосу", "Ввести в действие", "Activate"),
    ("activate_note", "Барлық кезек жаңа ережелермен бір оқиға ретінде қайта реттеледі.", "Все очереди будут пересчитаны по новым правилам одним событием.", "Every queue is re-ranked under the new rules, as one event."),
    ("activate_needs_admin", "Іске қосу ереже әкімшісі рөлін қажет етеді.", "Ввод в действие доступен администратору правил.", "Activation needs the rules_admin role."),
    ("check_ok", "Ережелер жиыны дұрыс:", "Набор правил корректен:", "The rule set compiles and passes its checks:"),
    ("categories_n", "санат", "категорий", "categories"),
    ("same_as_active", "белсенді нұсқамен бірдей", "совпадает с действующей версией", "identical to the active version"),
    ("moved", "Орны өзгереді", "Сдвинутся", "Would move"),
    ("up", "Алға", "Вверх", "Up"),
    ("down", "Артқа", "Вниз", "Down"),
    ("max_move", "Ең үлкен жылжу", "Наибольший сдвиг", "Largest move"),
    ("largest_moves", "Ең үлкен жылжулар", "Наибольшие сдвиги", "Largest moves"),
    ("filter_rows", "Кестеде сүзу", "Фильтр по таблице", "Filter the table"),
    ("old_position", "Қазіргі нөмірі", "Текущий номер", "Position now"),
    ("new_position", "Жаңа нөмірі", "Новый номер", "Position after"),
    ("move", "Жылжу", "Сдвиг", "Move"),
    ("done_activate", "Ережелер іске қосылды: нұсқа", "Правила введены: версия", "Rules activated: version"),
    ("bad_file_name", "файл атауы a-z, 0-9, '_', '-', '.' таңбаларынан тұрып, .rhai-мен аяқталуы керек", "имя файла: a-z, 0-9, '_', '-', '.', окончание .rhai", "a file name is a-z, 0-9, '_', '-', '.' and ends in .rhai"),
    ("bad_file_count", "Файлдар саны", "Число файлов", "Number of files"),
    // Console.
    ("run", "Орындау", "Выполнить", "Run"),
    ("console_note", "Тек оқу: скрипт ештеңені өзгерте алмайды; әр орындау аудит журналына жазылады.", "Только чтение: скрипт ничего не меняет; каждый запуск пишется в журнал аудита.", "Read-only: a script cannot change anything; each run is recorded in the audit log."),
    ("result", "Нәтиже", "Результат", "Result"),
    ("operations", "Операциялар", "Операций", "Operations"),
    ("functions", "Функциялар", "Функции", "Functions"),
    ("print_help", "шығысқа жол қосады", "добавляет строку в вывод", "adds a line to the output"),
    ("limits", "Шектеулер", "Ограничения", "Limits"),
    ("lim_operations", "операциялар", "операций", "operations"),
    ("lim_time", "уақыт", "время", "time"),
    ("lim_script", "скрипт көлемі", "размер скрипта", "script size"),
    ("lim_output", "нәтиже көлемі", "размер результата", "result size"),
    ("lim_rows", "бір сұраудағы жолдар", "строк за вызов", "rows per call"),
    // Audit.
    ("action", "Әрекет", "Действие", "Action"),
    ("date_from", "Күннен", "С даты", "From"),
    ("date_to", "Күнге дейін", "По дату", "To"),
    ("source", "Көзі", "Источник", "Source"),
    ("source_events", "кезек оқиғалары", "события очереди", "queue events"),
    ("source_web", "веб-консоль", "веб-консоль", "web console"),
    ("what", "Не", "Что", "What"),
    ("reason_outcome", "Себебі / нәтижесі", "Причина / итог", "Reason / outcome"),
    ("showing_newest", "көрсетілгені ең соңғы", "показаны последние", "showing the newest"),
    // Public.
    ("public_title", "Балабақшаға кезек: ашық ақпарат", "Очередь в детские сады: открытые данные", "Kindergarten queue: public figures"),
    ("public_intro", "Туған жыл және оқыту тілі бойынша кезектегі балалар мен жарияланған орындар. Жағдай:", "Дети в очереди и опубликованные места по году рождения и языку обучения. По состоянию на", "Children waiting and places published, by cohort and language of instruction. As of"),
    ("public_note", "Жеке деректер көрсетілмейді.", "Персональные данные не показываются.", "No personal data is shown."),
    ("places_published", "Жарияланған орындар", "Опубликовано мест", "Places published"),
    ("places_free", "Бос орындар", "Свободных мест", "Places free"),
    // Simulation.
    ("nav_simulate", "Модельдеу", "Моделирование", "Simulation"),
    ("sim_baseline", "Базалық ережелер", "Базовые правила", "Baseline rules"),
    ("sim_candidate", "Жаңа ережелер", "Новые правила", "Candidate rules"),
    ("sim_candidate_draft", "төмендегі файлдар (жоба)", "файлы ниже (черновик)", "the files below (draft)"),
    ("sim_candidate_none", "жоқ (тек базалық)", "нет (только базовые)", "none (baseline only)"),
    ("sim_files", "Жаңа ережелердің файлдары", "Файлы новых правил", "Candidate rule files"),
    ("sim_files_note", "Белсенді нұсқадан толтырылған; «төмендегі файлдар» таңдалғанда ғана қолданылады.", "Заполнены из действующей версии; используются, только если выбраны «файлы ниже».", "Prefilled from the active version; used only when the candidate is the files below."),
    ("sim_scenario", "Сценарий (TOML)", "Сценарий (TOML)", "Scenario (TOML)"),
    ("sim_runs", "Қайталаулар (seed)", "Прогонов (seed)", "Runs (seeds)"),
    ("sim_note", "Модельдеу тірі деректердің көшірмесінде жүреді және ештеңені өзгертпейді; бір уақытта біреуі ғана; уақыт шегі", "Моделирование идёт на копии данных и ничего не меняет; одно за раз; предел времени", "The simulation runs on a copy and changes nothing; one at a time; time limit"),
    ("sim_busy", "Басқа модельдеу жүріп жатыр: ол аяқталғанша күтіңіз.", "Уже идёт другое моделирование: дождитесь его окончания.", "Another simulation is running: wait until it ends."),
    ("sim_bad_runs", "қайталаулар саны", "число прогонов", "number of runs"),
    ("sim_running", "Модельдеу жүріп жатыр…", "Моделирование идёт…", "Simulating…"),
    ("sim_days", "модельдік күн", "модельных дней", "simulated days"),
    ("sim_cancelled", "Модельдеу тоқтатылды", "Моделирование отменено", "The simulation was cancelled"),
    ("sim_timed_out", "Модельдеу уақыт шегінен асты", "Моделирование превысило предел времени", "The simulation ran past its time limit"),
    ("sim_failed", "Модельдеу орындалмады", "Моделирование не удалось", "The simulation failed"),
    ("sim_no_job", "Мұндай модельдеу жоқ (ескі нәтижелер жадтан өшіріледі)", "Такого моделирования нет (старые результаты удаляются из памяти)", "No such simulation (old results are dropped from memory)"),
    ("sim_not_yours", "Модельдеуді оны іске қосқан адам ғана тоқтата алады", "Отменить моделирование может только тот, кто его запустил", "Only who started a simulation can cancel it"),
    ("sim_new", "Жаңа модельдеу", "Новое моделирование", "New simulation"),
    ("sim_started", "Басталды", "Начато", "Started"),
    ("sim_seed", "seed", "seed", "seed"),
    ("sim_months", "ай", "мес.", "month(s)"),
    ("sim_summary", "Негізгі көрсеткіштер", "Основные показатели", "Main figures"),
    ("sim_by_category", "Санаттар бойынша", "По категориям", "By category"),
    ("sim_waiting_start", "Басында кезекте", "В очереди в начале", "Waiting at the start"),
    ("sim_arrivals", "Жаңа өтініштер", "Новых заявлений", "Arrivals registered"),
    ("sim_published", "Жарияланған орындар", "Опубликовано мест", "Places published"),
    ("sim_placed", "Орналастырылды", "Устроено", "Placed"),
    ("sim_issued", "Берілген жолдамалар", "Выдано направлений", "Referrals issued"),
    ("sim_recalled", "кері шақырылды", "отозвано", "recalled"),
    ("sim_expired", "мерзімі өтті", "истекло", "expired"),
    ("sim_extended", "ұзартылды", "продлено", "extended"),
    ("sim_enrolled", "қабылданды", "зачислено", "enrolled"),
    ("sim_unused", "Басымдық кезеңінде пайдаланылмаған орындар", "Места, не занятые в приоритетный период", "Places unused at the end of priority phases"),
    ("sim_envy", "Әділ наразылық (алдағы бала әлі күтуде)", "Обоснованная зависть (стоящий впереди ещё ждёт)", "Justified envy (one ahead still waits)"),
    ("sim_waiting_end", "Соңында кезекте", "В очереди в конце", "Waiting at the end"),
    ("sim_median_days", "күн, медиана", "дней, медиана", "days, median"),
    ("sim_p90_days", "күн, p90", "дней, p90", "days, p90"),
    ("sim_comparison", "Базалық ережелермен салыстыру", "Сравнение с базовыми правилами", "Against the baseline"),
    ("sim_earlier", "ертерек", "раньше", "earlier"),
    ("sim_later", "кейінірек", "позже", "later"),
    ("sim_unchanged", "өзгеріссіз", "без изменений", "unchanged"),
    ("sim_only_candidate", "тек жаңа ережелермен орналасты", "устроены только по новым правилам", "placed only under the candidate"),
    ("sim_only_baseline", "тек базалық ережелермен орналасты", "устроены только по базовым правилам", "placed only under the baseline"),
    ("sim_largest_shifts", "Ең үлкен ығысулар (күн)", "Наибольшие сдвиги (дни)", "Largest shifts (days)"),
    ("sim_spread", "Seed бойынша шашырау", "Разброс по seed", "Spread over seeds"),
    ("sim_charts", "Графиктер", "Графики", "Charts"),
    ("sim_downloads", "CSV жүктеу", "Скачать CSV", "Download CSV"),
];

fn table() -> &'static HashMap<&'static str, [&'static str; 3]> {
    static T: OnceLock<HashMap<&'static str, [&'static str; 3]>> = OnceLock::new();
    T.get_or_init(|| {
        WORDS
            .iter()
            .map(|(k, kk, ru, en)| (*k, [*kk, *ru, *en]))
            .collect()
    })
}

/// The word of a key in a language; `⟦key⟧` for a key not in the table.
pub fn t(lang: Lang, key: &str) -> &'static str {
    match table().get(key) {
        Some(w) => match lang {
            Lang::Kk => w[0],
            Lang::Ru => w[1],
            Lang::En => w[2],
        },
        None => missing(key),
    }
}

/// `⟦key⟧`, interned so that `t` can return `&'static str` (bounded by the keys the code
/// asks for, which are constants).
fn missing(key: &str) -> &'static str {
    static MISSING: OnceLock<std::sync::Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let m = MISSING.get_or_init(Default::default);
    let Ok(mut m) = m.lock() else {
        return "⟦?⟧";
    };
    if m.len() > 1000 {
        return "⟦?⟧";
    }
    m.entry(key.to_string())
        .or_insert_with(|| Box::leak(format!("⟦{key}⟧").into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_all_three_languages_once() {
        let mut seen = std::collections::HashSet::new();
        for (k, kk, ru, en) in WORDS {
            assert!(seen.insert(*k), "key {k} twice");
            for (lang, w) in [("kk", kk), ("ru", ru), ("en", en)] {
                assert!(!w.trim().is_empty(), "{k}: no {lang}");
                assert!(!w.contains('⟦'), "{k}: {lang}");
            }
        }
        assert_eq!(t(Lang::Ru, "nav_overview"), "Обзор");
        assert_eq!(t(Lang::Kk, "referral"), "Жолдама");
        assert_eq!(t(Lang::En, "no_such_key"), "⟦no_such_key⟧");
    }

    #[test]
    fn domain_words_are_those_of_domain_md() {
        // domain.md section 2.
        assert_eq!(t(Lang::Kk, "application"), "Өтініш");
        assert_eq!(t(Lang::Ru, "application"), "Заявление");
        assert_eq!(t(Lang::Ru, "referral"), "Направление");
        assert_eq!(t(Lang::Kk, "act_recall"), "Жолдаманы кері шақыру");
        assert_eq!(t(Lang::Kk, "act_extend"), "Жолдаманы ұзарту");
        assert_eq!(t(Lang::Ru, "iin"), "ИИН");
        assert_eq!(t(Lang::Kk, "iin"), "ЖСН");
        assert_eq!(t(Lang::Ru, "free_access"), "свободный доступ");
        assert_eq!(t(Lang::Kk, "free_access"), "еркін қол жеткізу");
    }

    #[test]
    fn languages_parse() {
        assert_eq!(Lang::parse("KK"), Some(Lang::Kk));
        assert_eq!(Lang::parse("ru"), Some(Lang::Ru));
        assert_eq!(Lang::parse("de"), None);
    }
}
