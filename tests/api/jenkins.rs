//! The Jenkins-compatible remote API, as scripts and plugins call it.

use serde_json::{Value, json};

use crate::helpers::{Auth, spawn_app};

#[tokio::test]
async fn scripts_trigger_builds_and_follow_them_like_on_jenkins() {
    let app = spawn_app().await;
    let owner = app.signup("ci@example.com").await;
    app.create_org(&owner, "acme").await;
    let project = app.create_project(&owner, "acme", "web").await;
    let token = app.create_token(&owner, "acme", &["write"]).await;
    let basic = Auth::Basic("ci@example.com".into(), token.clone());

    let (status, crumb) = app
        .get_as("/jenkins/acme/crumbIssuer/api/json", &basic)
        .await;
    assert_eq!(
        (status, crumb["crumbRequestField"].as_str()),
        (200, Some("Jenkins-Crumb"))
    );
    assert!(crumb["crumb"].as_str().is_some_and(|c| c.len() == 64));

    let res = app
        .client
        .post(app.url("/jenkins/acme/job/web/build"))
        .basic_auth("ci@example.com", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&app.url("/jenkins/acme/queue/item/")) && location.ends_with('/'),
        "{location}"
    );
    let item_path = location.trim_start_matches(&app.url("")).to_owned() + "api/json";
    let (status, item) = app.get_as(&item_path, &basic).await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["executable"]["number"], 1);
    assert_eq!(
        item["executable"]["url"],
        app.url("/jenkins/acme/job/web/1/")
    );

    let res = app
        .client
        .post(app.url("/jenkins/acme/job/web/buildWithParameters?VERSION=2.0&token=ignored"))
        .bearer_auth(&token)
        .form(&[("REGION", "eu")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (_, run) = app
        .get_as("/api/v1/orgs/acme/projects/web/runs/2", &basic)
        .await;
    assert_eq!(run["params"], json!({"VERSION": "2.0", "REGION": "eu"}));
    assert_eq!(run["trigger"], "jenkins");

    let (status, job) = app.get_as("/jenkins/acme/job/web/api/json", &basic).await;
    assert_eq!(status, 200);
    assert_eq!(job["builds"].as_array().unwrap().len(), 2);
    assert_eq!(job["lastBuild"]["number"], 2);
    assert_eq!(job["nextBuildNumber"], 3);
    assert_eq!(job["inQueue"], true);

    let (status, build) = app.get_as("/jenkins/acme/job/web/1/api/json", &basic).await;
    assert_eq!(status, 200);
    assert_eq!(build["number"], 1);
    assert_eq!(build["result"], Value::Null, "not finished");
    assert_eq!(build["building"], false);
    assert!(build["timestamp"].as_i64().unwrap() > 0);
    let (_, last) = app
        .get_as("/jenkins/acme/job/web/lastBuild/api/json", &basic)
        .await;
    assert_eq!(last["number"], 2);
    let res = app
        .client
        .get(app.url("/jenkins/acme/job/web/1/consoleText"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        app.get_as("/jenkins/acme/job/web/9/api/json", &basic)
            .await
            .0,
        404
    );
    assert_eq!(
        app.get_as("/jenkins/acme/job/web/api/json", &Auth::None)
            .await
            .0,
        401
    );

    // GitLab's Jenkins integration posts its push payload to project/{project}.
    let secret = project["webhook"]["secret"].as_str().unwrap();
    let res = app
        .client
        .post(app.url("/jenkins/acme/project/web"))
        .header("x-gitlab-token", secret)
        .header("x-gitlab-event", "Push Hook")
        .json(&json!({"object_kind": "push", "ref": "refs/heads/main", "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["run"], 3);
}

/// The `url` of a job or build, opened in a browser, leads to its page.
#[tokio::test]
async fn jenkins_build_and_job_urls_open_the_run_and_project_pages() {
    let app = spawn_app().await;
    let owner = app.signup("ci@example.com").await;
    app.create_org(&owner, "acme").await;
    app.create_project(&owner, "acme", "web").await;
    let (status, _) = app
        .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201);
    let Auth::Session { cookie, .. } = &owner else {
        unreachable!()
    };
    for (url, page) in [
        ("/jenkins/acme/job/web/1/", "/orgs/acme/projects/web/runs/1"),
        ("/jenkins/acme/job/web/", "/orgs/acme/projects/web"),
    ] {
        let res = app
            .client
            .get(app.url(url))
            .header("cookie", format!("sluice_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{url}");
        assert_eq!(res.headers()["location"], page, "{url}");
        // Signed out: to sign in first, then there.
        let res = app.client.get(app.url(url)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{url}");
        assert_eq!(
            res.headers()["location"].to_str().unwrap(),
            format!("/login?next={page}"),
            "{url}"
        );
    }
    let (status, page) = app.page("/orgs/acme/projects/web/runs/1", &owner).await;
    assert_eq!(status, 200, "{page}");
    let res = app
        .client
        .get(app.url("/jenkins/acme/job/web/9/"))
        .header("cookie", format!("sluice_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "a run that does not exist");
}
