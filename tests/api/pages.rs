use crate::helpers::spawn_app;

#[tokio::test]
async fn landing_page_says_what_sluice_is_and_links_to_sign_in() {
    let app = spawn_app().await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("Jenkinsfile"));
    assert!(html.contains("href=\"/login\""));
    assert!(html.contains("href=\"/static/app.css\""));
}

#[tokio::test]
async fn static_assets_are_served_from_the_binary() {
    let app = spawn_app().await;
    let res = app.get("/static/app.css").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(res.text().await.unwrap().contains("--accent"));
    let res = app.get("/static/favicon.svg").await;
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
}
